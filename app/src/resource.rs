//! Server data for the pages, read in the browser by the same JSON reader
//! the server functions use.
//!
//! A resource's first value comes inside the server's HTML as text, and
//! Leptos' default codec reads it with `serde_json::from_str`; a server
//! function's answer comes as bytes, read with `serde_json::from_slice`. Each
//! reader is compiled once per type it reads, so with both the browser's
//! wasm carried every page's deserialization twice. [`load`] reads the HTML's
//! text as bytes too.

use leptos::prelude::*;
use leptos::server::codee::{Decoder, Encoder};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// JSON written as text and read from its bytes (see the module).
pub struct JsonBytes;

impl<T: Serialize> Encoder<T> for JsonBytes {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(val: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(val)
    }
}

impl<T: DeserializeOwned> Decoder<T> for JsonBytes {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(val: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(val.as_bytes())
    }
}

/// A page's server data, loaded again whenever `source` changes.
pub type Loaded<T> = Resource<T, JsonBytes>;

/// [`Resource::new`] with [`JsonBytes`]: `fetcher` runs on the server for
/// the first render, and in the browser whenever `source` changes.
#[track_caller]
pub fn load<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Loaded<T>
where
    S: Send + Sync + Clone + PartialEq + 'static,
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}
