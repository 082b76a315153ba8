//! GPT-2 for the text_generation task's Rust arms: the model on candle-nn (gpt2.rs, the
//! `text_generation` binary's) and the model folder's checks both arms share (model.rs; the tch arm,
//! rust/text_generation-tch, writes its model on libtorch).
pub mod gpt2;
pub mod model;
