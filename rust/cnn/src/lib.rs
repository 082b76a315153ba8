//! What the deep-learning tasks' tch and candle arms share (the CNN task's binary and rust/rnn): each
//! framework's half of the `train_classifier` protocol of bench-core, for any network.
pub mod candle_net;
pub mod tch_net;
