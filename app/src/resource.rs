//! The portal's resources: as Leptos's `Resource::new`, but the data the server writes into
//! the page for hydration is read in the browser by [`Json`], from bytes, as the server
//! functions' answers are (`serde_json::from_slice`). Leptos's own codec reads it from a
//! `&str` instead, so the wasm carried every answer type's deserializer twice, once per
//! serde_json reader; one reader takes 7 % (raw) and 6 % (gzip) off the release wasm
//! (measured in issue 20's note). What the server writes is the same JSON.

use leptos::prelude::*;
use leptos::server::codee::{Decoder, Encoder};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// JSON, decoded from bytes: one serde_json reader for resources and server functions.
pub struct Json;

impl<T: Serialize> Encoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, Self::Error> {
        serde_json::to_string(value)
    }
}

impl<T: DeserializeOwned> Decoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(encoded: &str) -> Result<T, Self::Error> {
        serde_json::from_slice(encoded.as_bytes())
    }
}

/// A resource that hydrates through [`Json`].
pub type Loaded<T> = Resource<T, Json>;

/// A resource as `Resource::new` makes one: `fetcher` runs for each new value of `source`
/// (on the server, once, its data then written into the page for the browser to read).
#[track_caller]
pub fn new<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Loaded<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    S: Send + Sync + Clone + PartialEq + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Page {
        name: String,
        rows: Vec<u32>,
        next: Option<String>,
    }

    #[test]
    fn what_is_written_is_read_back() {
        let page = Page {
            name: "web \"1\" ✓".into(),
            rows: vec![1, 2, 3],
            next: None,
        };
        let written = <Json as Encoder<Page>>::encode(&page).unwrap();
        assert_eq!(
            written,
            r#"{"name":"web \"1\" ✓","rows":[1,2,3],"next":null}"#
        );
        let read: Page = <Json as Decoder<Page>>::decode(&written).unwrap();
        assert_eq!(read, page);
    }

    #[test]
    fn a_bad_document_is_an_error_not_a_panic() {
        let read = <Json as Decoder<Page>>::decode(r#"{"name": 1}"#);
        assert!(read.is_err());
    }
}
