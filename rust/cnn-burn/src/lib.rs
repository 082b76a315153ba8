//! What the deep-learning tasks' burn arms share (the CNN task's binary and rust/rnn-burn): burn's half
//! of the `train_classifier` protocol of bench-core, for any network.
pub mod burn_net;
