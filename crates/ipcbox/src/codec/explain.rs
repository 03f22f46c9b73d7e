//! Why a postcard payload does not decode, in words a person can act on.
//!
//! postcard drops the message of every error that serde's generated code raises (an unknown
//! enum variant, a custom check in a `Deserialize` impl) and reports only "Serde
//! Deserialization Error". [`explain`] decodes the payload again through a deserializer that
//! wraps postcard's and keeps that message, the index of an unknown variant, and the names of
//! the types being decoded when it failed.

// Only the failure path pays for this: a payload that decodes is never decoded twice.

use std::cell::RefCell;
use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

/// Decodes `payload` as `M` once more and says why it fails: the innermost failure, with the
/// types it happened in. `None` if it decodes this time.
pub(super) fn explain<M: DeserializeOwned>(payload: &[u8]) -> Option<String> {
    let track = Track::default();
    let mut inner = postcard::Deserializer::from_bytes(payload);
    match M::deserialize(De {
        inner: &mut inner,
        track: &track,
    }) {
        Ok(_) => None,
        Err(e) => Some(e.0),
    }
}

/// What the wrappers learn on the way down: the types being decoded, and the first (the
/// innermost) failure with the path it happened at.
#[derive(Default)]
struct Track {
    path: RefCell<Vec<&'static str>>,
    failure: RefCell<Option<String>>,
}

impl Track {
    /// Records `why` as the failure, unless a deeper one was recorded first; returns the one
    /// recorded.
    fn fail(&self, why: impl fmt::Display) -> Explained {
        let mut failure = self.failure.borrow_mut();
        let text = failure.get_or_insert_with(|| {
            let path = self.path.borrow();
            if path.is_empty() {
                why.to_string()
            } else {
                format!("{}: {why}", path.join(" > "))
            }
        });
        Explained(text.clone())
    }

    fn result<T, E: fmt::Display>(&self, res: Result<T, E>) -> Result<T, Explained> {
        res.map_err(|e| self.fail(e))
    }

    /// Runs `f` with `name` on the path.
    fn within<T>(&self, name: &'static str, f: impl FnOnce() -> T) -> T {
        self.path.borrow_mut().push(name);
        let out = f();
        self.path.borrow_mut().pop();
        out
    }
}

/// The error of the wrappers: serde's message, kept.
#[derive(Debug)]
struct Explained(String);

impl fmt::Display for Explained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Explained {}

impl de::Error for Explained {
    fn custom<T: fmt::Display>(msg: T) -> Explained {
        Explained(msg.to_string())
    }
}

/// Hands an error of the wrappers to the wrapped deserializer, recording it first (its own
/// error type may keep nothing of it).
fn back<E: de::Error>(track: &Track, e: Explained) -> E {
    E::custom(track.fail(e))
}

/// The wrapping deserializer.
struct De<'t, D> {
    inner: D,
    track: &'t Track,
}

/// The wrapping visitor; `enum_name` is set for the identifier of a variant.
struct Wrap<'t, V> {
    inner: V,
    track: &'t Track,
    variant_of: Option<(&'static str, usize)>,
}

fn wrap<V>(inner: V, track: &Track) -> Wrap<'_, V> {
    Wrap {
        inner,
        track,
        variant_of: None,
    }
}

macro_rules! forward_de {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Explained> {
            let track = self.track;
            track.result(self.inner.$method($($arg,)* wrap(visitor, track)))
        }
    )*};
}

macro_rules! forward_named_de {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(
            self,
            name: &'static str,
            $($arg: $ty,)*
            visitor: V,
        ) -> Result<V::Value, Explained> {
            let track = self.track;
            track.within(name, || {
                track.result(self.inner.$method(name, $($arg,)* wrap(visitor, track)))
            })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for De<'_, D> {
    type Error = Explained;

    forward_de! {
        deserialize_any(); deserialize_bool(); deserialize_i8(); deserialize_i16();
        deserialize_i32(); deserialize_i64(); deserialize_i128(); deserialize_u8();
        deserialize_u16(); deserialize_u32(); deserialize_u64(); deserialize_u128();
        deserialize_f32(); deserialize_f64(); deserialize_char(); deserialize_str();
        deserialize_string(); deserialize_bytes(); deserialize_byte_buf(); deserialize_option();
        deserialize_unit(); deserialize_seq(); deserialize_tuple(len: usize); deserialize_map();
        deserialize_ignored_any();
    }

    forward_named_de! {
        deserialize_unit_struct(); deserialize_newtype_struct();
        deserialize_tuple_struct(len: usize);
        deserialize_struct(fields: &'static [&'static str]);
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Explained> {
        let track = self.track;
        let visitor = Wrap {
            inner: visitor,
            track,
            variant_of: Some((name, variants.len())),
        };
        track.within(name, || {
            track.result(self.inner.deserialize_enum(name, variants, visitor))
        })
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Explained> {
        let track = self.track;
        track.result(self.inner.deserialize_identifier(wrap(visitor, track)))
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            let track = self.track;
            self.inner.$method(v).map_err(|e| back(track, e))
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool); visit_i8(i8); visit_i16(i16); visit_i32(i32); visit_i64(i64);
        visit_i128(i128); visit_u8(u8); visit_u16(u16); visit_u64(u64); visit_u128(u128);
        visit_f32(f32); visit_f64(f64); visit_char(char); visit_str(&str);
        visit_borrowed_str(&'de str); visit_string(String); visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]); visit_byte_buf(Vec<u8>);
    }

    /// postcard hands a variant's index to the identifier visitor as a `u32`: an index the
    /// enum does not have is said so, with the enum's name.
    fn visit_u32<E: de::Error>(self, v: u32) -> Result<Self::Value, E> {
        let track = self.track;
        match (self.inner.visit_u32(v), self.variant_of) {
            (Ok(value), _) => Ok(value),
            (Err(_), Some((name, count))) => Err(back(
                track,
                Explained(format!(
                    "unknown variant index {v} of enum {name}, which has {count} variant{}",
                    if count == 1 { "" } else { "s" }
                )),
            )),
            (Err(e), None) => Err(back(track, e)),
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        let track = self.track;
        self.inner.visit_none().map_err(|e| back(track, e))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        let track = self.track;
        self.inner.visit_unit().map_err(|e| back(track, e))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let track = self.track;
        let de = De { inner: d, track };
        self.inner.visit_some(de).map_err(|e| back(track, e))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let track = self.track;
        let de = De { inner: d, track };
        self.inner
            .visit_newtype_struct(de)
            .map_err(|e| back(track, e))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let track = self.track;
        let seq = Access { inner: seq, track };
        self.inner.visit_seq(seq).map_err(|e| back(track, e))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let track = self.track;
        let map = Access { inner: map, track };
        self.inner.visit_map(map).map_err(|e| back(track, e))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        let track = self.track;
        let data = Enum {
            inner: data,
            track,
            variant_of: self.variant_of,
        };
        self.inner.visit_enum(data).map_err(|e| back(track, e))
    }
}

/// A wrapped `SeqAccess`, `MapAccess` or `VariantAccess`.
struct Access<'t, A> {
    inner: A,
    track: &'t Track,
}

/// A wrapped seed: what it deserializes from is wrapped too.
struct Seed<'t, S> {
    inner: S,
    track: &'t Track,
    variant_of: Option<(&'static str, usize)>,
}

fn seed<S>(inner: S, track: &Track) -> Seed<'_, S> {
    Seed {
        inner,
        track,
        variant_of: None,
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        let track = self.track;
        let res = match self.variant_of {
            None => self.inner.deserialize(De { inner: d, track }),
            Some(of) => self.inner.deserialize(Identifier {
                inner: d,
                track,
                of,
            }),
        };
        res.map_err(|e| back(track, e))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Access<'_, A> {
    type Error = Explained;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        s: T,
    ) -> Result<Option<T::Value>, Explained> {
        let track = self.track;
        track.result(self.inner.next_element_seed(seed(s, track)))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Access<'_, A> {
    type Error = Explained;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        s: K,
    ) -> Result<Option<K::Value>, Explained> {
        let track = self.track;
        track.result(self.inner.next_key_seed(seed(s, track)))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, s: T) -> Result<T::Value, Explained> {
        let track = self.track;
        track.result(self.inner.next_value_seed(seed(s, track)))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

struct Enum<'t, A> {
    inner: A,
    track: &'t Track,
    variant_of: Option<(&'static str, usize)>,
}

impl<'de, 't, A: EnumAccess<'de>> EnumAccess<'de> for Enum<'t, A> {
    type Error = Explained;
    type Variant = Access<'t, A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        s: T,
    ) -> Result<(T::Value, Self::Variant), Explained> {
        let track = self.track;
        let s = Seed {
            inner: s,
            track,
            variant_of: self.variant_of,
        };
        let (value, variant) = track.result(self.inner.variant_seed(s))?;
        Ok((
            value,
            Access {
                inner: variant,
                track,
            },
        ))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Access<'_, A> {
    type Error = Explained;

    fn unit_variant(self) -> Result<(), Explained> {
        self.track.result(self.inner.unit_variant())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, s: T) -> Result<T::Value, Explained> {
        let track = self.track;
        track.result(self.inner.newtype_variant_seed(seed(s, track)))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, Explained> {
        let track = self.track;
        track.result(self.inner.tuple_variant(len, wrap(v, track)))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Explained> {
        let track = self.track;
        track.result(self.inner.struct_variant(fields, wrap(v, track)))
    }
}

/// The deserializer a variant's identifier comes from: its visitor learns which enum it is.
struct Identifier<'t, D> {
    inner: D,
    track: &'t Track,
    of: (&'static str, usize),
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Identifier<'_, D> {
    type Error = Explained;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Explained> {
        self.deserialize_identifier(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Explained> {
        let track = self.track;
        let visitor = Wrap {
            inner: visitor,
            track,
            variant_of: Some(self.of),
        };
        track.result(self.inner.deserialize_identifier(visitor))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        ignored_any
    }
}
