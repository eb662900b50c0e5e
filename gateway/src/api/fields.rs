//! Reading a JSON request body field by field, so every problem is reported against its field:
//! unknown fields, missing ones, wrong types and invalid values, all at once.

use std::str::FromStr;

use alipay::{Amount, Currency, MoneyError};
use serde_json::{Map, Value};

use crate::problem::{ApiError, FieldError};

/// A JSON object whose keys are each given once: with a key twice, which value counts would
/// depend on the parser, and the POS, a proxy and the gateway could each read another payment.
struct Object(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for Object {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = Object;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("the body to be a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Object, A::Error> {
                let mut map = Map::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    if map.contains_key(&key) {
                        let shown: String = key.chars().take(64).collect();
                        return Err(serde::de::Error::custom(format!("the field `{shown}` is given twice")));
                    }
                    map.insert(key, value);
                }
                Ok(Object(map))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

/// A body being read.
pub struct Fields {
    map: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Fields {
    /// Parses `body` as a JSON object whose keys are all in `allowed`.
    pub fn parse(body: &[u8], allowed: &[&'static str]) -> Result<Fields, ApiError> {
        let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
        let Object(map) = serde_json::from_slice(body).map_err(|e| ApiError::BadJson(e.to_string()))?;
        let mut errors = Vec::new();
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                errors.push(FieldError {
                    field: "body",
                    message: format!("unknown field `{}`", key.chars().take(64).collect::<String>()),
                });
            }
        }
        Ok(Fields { map, errors })
    }

    fn text(&mut self, name: &'static str) -> Option<String> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                self.errors.push(FieldError::new(name, "must be a string"));
                None
            }
        }
    }

    /// A required field, parsed.
    pub fn required<T: FromStr>(&mut self, name: &'static str, rule: &str) -> Option<T> {
        match self.text(name) {
            None if !self.has_error(name) => {
                self.errors.push(FieldError::new(name, "is required"));
                None
            }
            None => None,
            Some(text) => self.parse_value(name, &text, rule),
        }
    }

    /// An optional field, parsed when present.
    pub fn optional<T: FromStr>(&mut self, name: &'static str, rule: &str) -> Option<T> {
        let text = self.text(name)?;
        self.parse_value(name, &text, rule)
    }

    fn parse_value<T: FromStr>(&mut self, name: &'static str, text: &str, rule: &str) -> Option<T> {
        match text.parse() {
            Ok(value) => Some(value),
            Err(_) => {
                self.errors.push(FieldError::new(name, format!("must be {rule}")));
                None
            }
        }
    }

    /// An optional whole number: a JSON integer, or its digits as a string.
    pub fn optional_count(&mut self, name: &'static str, rule: &str) -> Option<u64> {
        if let Some(Value::Number(number)) = self.map.get(name) {
            let count = number.as_u64();
            if count.is_none() {
                self.errors.push(FieldError::new(name, format!("must be {rule}")));
            }
            return count;
        }
        self.optional(name, rule)
    }

    /// A required amount in `currency`'s major unit, positive and within Alipay's range.
    pub fn amount(&mut self, name: &'static str, currency: Option<Currency>) -> Option<Amount> {
        let text = self.text(name);
        let (Some(text), Some(currency)) = (text, currency) else {
            if !self.has_error(name) && !self.map.contains_key(name) {
                self.errors.push(FieldError::new(name, "is required"));
            }
            return None;
        };
        match Amount::parse_positive(&text, currency) {
            Ok(amount) => Some(amount),
            Err(error) => {
                let message = match error {
                    MoneyError::TooManyDecimals => {
                        format!("has more than {} decimal places for {currency}", currency.exponent())
                    }
                    MoneyError::OutOfRange => "must be at most 100000000".into(),
                    MoneyError::NotPositive => "must be greater than zero".into(),
                    _ => "must be a decimal string such as \"88.88\"".into(),
                };
                self.errors.push(FieldError::new(name, message));
                None
            }
        }
    }

    /// An optional free text of at most `max` characters without control characters.
    pub fn text_up_to(&mut self, name: &'static str, max: usize) -> Option<String> {
        let text = self.text(name)?;
        if text.chars().count() > max || text.chars().any(char::is_control) {
            self.errors
                .push(FieldError::new(name, format!("must be at most {max} characters without control characters")));
            return None;
        }
        Some(text)
    }

    fn has_error(&self, name: &str) -> bool {
        self.errors.iter().any(|e| e.field == name)
    }

    /// Adds a problem found by the caller.
    pub fn reject(&mut self, name: &'static str, message: impl Into<String>) {
        self.errors.push(FieldError::new(name, message));
    }

    /// `Ok` when nothing was wrong, else every problem at once.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() { Ok(()) } else { Err(ApiError::Invalid(self.errors)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_named() {
        let mut fields =
            Fields::parse(br#"{"amount": 1.5, "extra": 1, "subject": "x"}"#, &["amount", "subject", "out_trade_no"])
                .unwrap();
        let _: Option<String> = fields.required("out_trade_no", "an id");
        fields.amount("amount", Some(Currency::CNY));
        let Err(ApiError::Invalid(errors)) = fields.finish() else { panic!() };
        let named: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(named, ["body", "out_trade_no", "amount"]);
        assert!(matches!(Fields::parse(b"[1]", &[]), Err(ApiError::BadJson(_))));
        let mut fields = Fields::parse(br#"{"amount": "1.001"}"#, &["amount"]).unwrap();
        fields.amount("amount", Some(Currency::CNY));
        let Err(ApiError::Invalid(errors)) = fields.finish() else { panic!() };
        assert!(errors[0].message.contains("decimal places"));
    }
}
