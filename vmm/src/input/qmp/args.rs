//! The thin layer between QMP requests (the envelope and the commands'
//! `arguments`) and their `Deserialize` types: a serde `Deserializer` over a JSON value that reports errors as
//! QEMU 7.2 words them, with the parameter's path (`keys[0].data`; only the
//! member's own name for a value an enum does not accept, as QEMU):
//!
//! - `Parameter 'P' is missing`
//! - `Invalid parameter type for 'P', expected: T` (`array`, `object`,
//!   `string`, `integer`, `boolean`, `number`, `null`)
//! - `Parameter 'P' is unexpected`
//! - `Parameter 'NAME' does not accept value 'V'`
//!
//! It checks members in the order this server always did: unknown members
//! first (for types with `deny_unknown_fields`), then the declared fields in
//! declaration order (see [`PRESENCE_FIRST`] for the exception), a missing
//! one failing where it is declared (an absent member is presented
//! as an absent value: `Option` fields take it as `None`, every other type
//! fails with "is missing"). Messages of the types' own checks
//! (`de::Error::custom`) are passed through as they are.
use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Decodes a command's `arguments` object into `T`.
pub(super) fn decode_arguments<'a, T: Deserialize<'a>>(
    arguments: &'a Map<String, Value>,
) -> Result<T, ArgError> {
    T::deserialize(Arguments(arguments))
}

/// Decodes a whole request (any JSON value) into `T`, its errors worded as
/// QEMU words them for the request itself: "QMP input must be a JSON
/// object", "QMP input lacks member 'M'", "QMP input member 'M' is
/// unexpected", "QMP input member 'M' must be a T".
pub(super) fn decode_request<'a, T: Deserialize<'a>>(request: &'a Value) -> Result<T, String> {
    T::deserialize(Arg(Some(request))).map_err(|error| {
        let member = error.path();
        match &error.problem {
            Problem::BadType(_) if member.is_empty() => "QMP input must be a JSON object".into(),
            Problem::Missing => format!("QMP input lacks member '{member}'"),
            Problem::Unexpected => format!("QMP input member '{member}' is unexpected"),
            Problem::BadType(expected) => {
                let article = if expected.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                };
                format!("QMP input member '{member}' must be {article} {expected}")
            }
            _ => error.to_string(),
        }
    })
}

/// One step of a parameter's path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Member(String),
    Index(usize),
}

/// What is wrong, before the path is known.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Problem {
    Missing,
    BadType(&'static str),
    Unexpected,
    BadValue(String),
    /// A type's own message, shown as it is.
    Message(String),
}

/// An argument error: the problem and where (innermost segment first, as
/// the error travels outwards and each level adds its step).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ArgError {
    problem: Problem,
    path: Vec<Segment>,
}

impl ArgError {
    fn new(problem: Problem) -> Self {
        ArgError {
            problem,
            path: Vec::new(),
        }
    }

    fn within(mut self, segment: Segment) -> Self {
        self.path.push(segment);
        self
    }

    fn path(&self) -> String {
        let mut path = String::new();
        for segment in self.path.iter().rev() {
            match segment {
                Segment::Member(name) if path.is_empty() => path.push_str(name),
                Segment::Member(name) => {
                    path.push('.');
                    path.push_str(name);
                }
                Segment::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        path
    }
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path();
        match &self.problem {
            Problem::Missing => write!(f, "Parameter '{path}' is missing"),
            Problem::BadType(expected) => write!(
                f,
                "Invalid parameter type for '{path}', expected: {expected}"
            ),
            Problem::Unexpected => write!(f, "Parameter '{path}' is unexpected"),
            Problem::BadValue(value) => {
                // QEMU names only the member here (`input_type_enum` has
                // no path): "Parameter 'data' ...", "null" for a list
                // element.
                let name = match self.path.first() {
                    Some(Segment::Member(name)) => name.as_str(),
                    _ => "null",
                };
                write!(f, "Parameter '{name}' does not accept value '{value}'")
            }
            Problem::Message(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ArgError {}

impl de::Error for ArgError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        ArgError::new(Problem::Message(message.to_string()))
    }

    fn missing_field(field: &'static str) -> Self {
        ArgError::new(Problem::Missing).within(Segment::Member(field.to_string()))
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        ArgError::new(Problem::Unexpected).within(Segment::Member(field.to_string()))
    }

    fn unknown_variant(variant: &str, _expected: &'static [&'static str]) -> Self {
        ArgError::new(Problem::BadValue(variant.to_string()))
    }

    fn invalid_value(unexpected: de::Unexpected<'_>, _expected: &dyn de::Expected) -> Self {
        let value = match unexpected {
            de::Unexpected::Str(text) => text.to_string(),
            de::Unexpected::Signed(n) => n.to_string(),
            de::Unexpected::Unsigned(n) => n.to_string(),
            other => other.to_string(),
        };
        ArgError::new(Problem::BadValue(value))
    }
}

/// Types (by their serde name) whose missing members are reported before
/// any member's value is checked, as this server always did for a
/// `KeyValue` (`{"type": "foo"}` lacks `data` before its type is wrong).
/// Elsewhere members are checked one by one in declaration order.
const PRESENCE_FIRST: &[&str] = &["KeyValue"];

/// A command's `arguments`: a struct whose members are checked in QEMU's
/// order.
struct Arguments<'a>(&'a Map<String, Value>);

/// A value, or `None` for an absent member.
struct Arg<'a>(Option<&'a Value>);

impl<'a> Arg<'a> {
    /// The value, or the "is missing" error.
    fn present(&self) -> Result<&'a Value, ArgError> {
        self.0.ok_or_else(|| ArgError::new(Problem::Missing))
    }

    fn bad_type(expected: &'static str) -> ArgError {
        ArgError::new(Problem::BadType(expected))
    }
}

/// The members of an object for a struct: unknown ones first (a type that
/// denies them fails on the first, as QEMU checks them before the rest),
/// then every declared field in order, absent ones as absent values.
struct Members<'a> {
    entries: Vec<(&'a str, Option<&'a Value>)>,
    /// Entries before this index are members the type does not declare.
    declared_from: usize,
    next: usize,
}

impl<'a> Members<'a> {
    fn for_struct(
        object: &'a Map<String, Value>,
        name: &str,
        fields: &'static [&'static str],
    ) -> Self {
        let unknown = object
            .iter()
            .filter(|(key, _)| !fields.contains(&key.as_str()))
            .map(|(key, value)| (key.as_str(), Some(value)));
        let mut entries: Vec<_> = unknown.collect();
        let declared_from = entries.len();
        let declared = fields.iter().map(|field| (*field, object.get(*field)));
        if PRESENCE_FIRST.contains(&name) {
            let (absent, present): (Vec<_>, Vec<_>) = declared.partition(|(_, v)| v.is_none());
            entries.extend(absent);
            entries.extend(present);
        } else {
            entries.extend(declared);
        }
        Members {
            entries,
            declared_from,
            next: 0,
        }
    }

    fn all(object: &'a Map<String, Value>) -> Self {
        Members {
            entries: object
                .iter()
                .map(|(key, value)| (key.as_str(), Some(value)))
                .collect(),
            declared_from: 0,
            next: 0,
        }
    }
}

impl<'de> de::MapAccess<'de> for Members<'de> {
    type Error = ArgError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ArgError> {
        let Some((key, _)) = self.entries.get(self.next) else {
            return Ok(None);
        };
        let key: &'de str = key;
        let undeclared = self.next < self.declared_from;
        seed.deserialize(key.into_deserializer())
            .map(Some)
            .map_err(|error| {
                // A type that denies unknown members refuses the key (serde
                // words it per kind of type: unknown field, or invalid value
                // for a tagged union's keys); QEMU says "unexpected".
                if undeclared {
                    ArgError::new(Problem::Unexpected).within(Segment::Member(key.to_string()))
                } else {
                    error
                }
            })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ArgError> {
        let (key, value) = self.entries[self.next];
        self.next += 1;
        seed.deserialize(Arg(value))
            .map_err(|e| e.within(Segment::Member(key.to_string())))
    }
}

/// The elements of an array.
struct Elements<'a> {
    values: std::slice::Iter<'a, Value>,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for Elements<'de> {
    type Error = ArgError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ArgError> {
        let Some(value) = self.values.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        seed.deserialize(Arg(Some(value)))
            .map(Some)
            .map_err(|e| e.within(Segment::Index(index)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.values.len())
    }
}

impl<'de> de::Deserializer<'de> for Arguments<'de> {
    type Error = ArgError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
        visitor.visit_map(Members::all(self.0))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ArgError> {
        visitor.visit_map(Members::for_struct(self.0, name, fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// Integer methods: a JSON number that fits the visitor's family (`i64`
/// for signed, `u64` for unsigned), else "expected: integer" (the visitor
/// itself rejects values out of its narrower range).
macro_rules! integer {
    ($as:ident $visit:ident: $($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
            match self.present()?.$as() {
                Some(n) => visitor.$visit(n),
                None => Err(Arg::bad_type("integer")),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Arg<'de> {
    type Error = ArgError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
        match self.present()? {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(n) = n.as_u64() {
                    visitor.visit_u64(n)
                } else if let Some(n) = n.as_i64() {
                    visitor.visit_i64(n)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(values) => visitor.visit_seq(Elements {
                values: values.iter(),
                index: 0,
            }),
            Value::Object(object) => visitor.visit_map(Members::all(object)),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
        match self.present()? {
            Value::Bool(b) => visitor.visit_bool(*b),
            _ => Err(Arg::bad_type("boolean")),
        }
    }

    integer! { as_i64 visit_i64: deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128 }
    integer! { as_u64 visit_u64: deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128 }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
        match self.present()? {
            Value::Number(n) => visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN)),
            _ => Err(Arg::bad_type("number")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
        match self.present()? {
            Value::String(s) => visitor.visit_borrowed_str(s),
            _ => Err(Arg::bad_type("string")),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
        self.deserialize_any(visitor)
    }

    /// An absent member is `None`; a present one, even `null`, is `Some`
    /// and checked as the inner type (QEMU has no null for these members).
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
        match self.0 {
            None => visitor.visit_none(),
            Some(_) => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
        match self.present()? {
            Value::Null => visitor.visit_unit(),
            _ => Err(Arg::bad_type("null")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ArgError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ArgError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
        match self.present()? {
            Value::Array(values) => visitor.visit_seq(Elements {
                values: values.iter(),
                index: 0,
            }),
            _ => Err(Arg::bad_type("array")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ArgError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ArgError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
        match self.present()? {
            Value::Object(object) => visitor.visit_map(Members::all(object)),
            _ => Err(Arg::bad_type("object")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ArgError> {
        match self.present()? {
            Value::Object(object) => visitor.visit_map(Members::for_struct(object, name, fields)),
            _ => Err(Arg::bad_type("object")),
        }
    }

    /// Enums are names (QAPI enums): a string, one of the variants.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ArgError> {
        match self.present()? {
            Value::String(s) => {
                let name: &'de str = s;
                visitor.visit_enum(name.into_deserializer())
            }
            _ => Err(Arg::bad_type("string")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgError> {
        visitor.visit_unit()
    }
}
