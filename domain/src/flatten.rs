//! Reading a struct that flattens another (`#[serde(flatten)]`) without serde's buffering.
//!
//! For a flattened field, serde's derive first reads every key it does not know into a
//! buffer of untyped values (`Content`), then reads the flattened type from that buffer.
//! That second reader instantiates the flattened type's whole tree of `Deserialize` impls
//! a second time — in the portal's wasm, a scale set's spec read twice over costs tens of
//! kilobytes on every page that shows one. [`split`] reads the other way round: the
//! flattened type streams from the map itself, and only the outer struct's own few keys
//! are set aside (as JSON values) to be read after it. The wire format is unchanged: the
//! types keep `#[serde(flatten)]` for writing and for the OpenAPI schema.

use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, IntoDeserializer, MapAccess};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Reads one map as `Inner` (every key but `Own`'s, streamed) and `Own` (its named
/// fields). `Own` is a plain struct with named fields and no flatten of its own; keys
/// neither knows are ignored, as serde's flatten ignores them.
pub(crate) fn split<'de, D, Inner, Own>(de: D) -> Result<(Inner, Own), D::Error>
where
    D: Deserializer<'de>,
    Inner: Deserialize<'de>,
    Own: DeserializeOwned,
{
    de.deserialize_map(Split {
        own_fields: fields::<Own>(),
        types: PhantomData,
    })
}

struct Split<Inner, Own> {
    own_fields: &'static [&'static str],
    types: PhantomData<(Inner, Own)>,
}

impl<'de, Inner, Own> de::Visitor<'de> for Split<Inner, Own>
where
    Inner: Deserialize<'de>,
    Own: DeserializeOwned,
{
    type Value = (Inner, Own);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut rest = Rest {
            map,
            own_fields: self.own_fields,
            own: Map::new(),
        };
        let inner = Inner::deserialize(&mut rest)?;
        // A derived struct reads to the end of the map; whatever it left is read here, so
        // that the own fields after it are not missed.
        while rest.next_key::<IgnoredAny>()?.is_some() {
            rest.next_value::<IgnoredAny>()?;
        }
        let own = Own::deserialize(Value::Object(rest.own)).map_err(de::Error::custom)?;
        Ok((inner, own))
    }
}

/// The outer map seen as the inner struct: the own fields' keys are taken out on the way.
struct Rest<A> {
    map: A,
    own_fields: &'static [&'static str],
    own: Map<String, Value>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Rest<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.map.next_key::<String>()? {
            let Some(field) = self.own_fields.iter().find(|f| **f == key) else {
                return seed.deserialize(key.into_deserializer()).map(Some);
            };
            let value = self.map.next_value::<Value>()?;
            if self.own.insert(key, value).is_some() {
                return Err(de::Error::duplicate_field(field));
            }
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for &mut Rest<A> {
    type Error = A::Error;

    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

/// The field names a derived `Deserialize` of a struct reads, as its derive lists them: it
/// asks for them with `deserialize_struct`, which this probe answers with an error.
fn fields<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;

        fn deserialize_struct<V: de::Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields read"))
        }

        fn deserialize_any<V: de::Visitor<'de>>(
            self,
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct with named fields"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Inner {
        name: String,
        #[serde(default)]
        size: u32,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Own {
        version: u32,
        #[serde(default)]
        note: Option<String>,
    }

    fn read(json: &str) -> Result<(Inner, Own), serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(json);
        split(&mut de)
    }

    #[test]
    fn fields_are_the_derives() {
        assert_eq!(fields::<Own>(), ["version", "note"]);
        assert_eq!(fields::<Inner>(), ["name", "size"]);
    }

    #[test]
    fn keys_go_to_their_struct_in_any_order_and_unknown_ones_are_ignored() {
        let (inner, own) = read(r#"{"version":3,"x":[1,{"y":2}],"name":"web","size":2}"#).unwrap();
        assert_eq!(
            inner,
            Inner {
                name: "web".into(),
                size: 2
            }
        );
        assert_eq!(
            own,
            Own {
                version: 3,
                note: None
            }
        );
        let (inner, own) = read(r#"{"name":"web","note":"n","version":1}"#).unwrap();
        assert_eq!((inner.size, own.note.as_deref()), (0, Some("n")));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"name":"web"}"#, "missing field `version`"),
            (r#"{"version":1}"#, "missing field `name`"),
            (
                r#"{"name":"web","version":"one"}"#,
                "invalid type: string \"one\"",
            ),
            (
                r#"{"name":"web","version":1,"version":2}"#,
                "duplicate field `version`",
            ),
            ("[1]", "expected a map"),
        ];
        for (json, want) in cases {
            let err = read(json).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
    }
}
