//! What both Rust arms of the text_encoding task share (the candle binary here, the tch one in
//! rust/text_encoding-tch): reading the set's tokenizer.json.
pub mod tokens;
