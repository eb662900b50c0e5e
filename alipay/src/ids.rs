//! Identifiers and short texts, each a parsed type: once built, it is valid on the wire.

/// A value does not have the shape its field requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field} has an invalid format: {rule}")]
pub struct InvalidId {
    pub field: &'static str,
    pub rule: &'static str,
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Defines a parsed identifier type: a `String` valid by `$check`, with `FromStr` (refusing with
/// [`InvalidId`] naming `$field` and `$rule`), `Display`, `AsRef<str>` and serde as text. Other
/// crates' identifiers (e.g. Global's file codes in `bills`) are made the same way.
#[macro_export]
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $rule:literal, |$s:ident| $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl $name {
            /// `text` if it is a valid one, without making one (nothing allocated).
            pub fn check($s: &str) -> Result<&str, $crate::InvalidId> {
                if $check { Ok($s) } else { Err($crate::InvalidId { field: $field, rule: $rule }) }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::InvalidId;
            fn from_str(text: &str) -> Result<Self, $crate::InvalidId> {
                Self::check(text).map(|text| Self(text.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::InvalidId;
            fn try_from(s: String) -> Result<Self, $crate::InvalidId> {
                s.parse()
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl $crate::__serde::Serialize for $name {
            fn serialize<S: $crate::__serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> $crate::__serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as $crate::__serde::Deserialize<'de>>::deserialize(d)?;
                text.parse().map_err(<D::Error as $crate::__serde::de::Error>::custom)
            }
        }
    };
}

id_type!(
    /// An OpenAPI application id (`app_id`): up to 32 digits.
    AppId, "app_id", "1 to 32 digits", |s| digits(s) && s.len() <= 32
);

id_type!(
    /// A MAPI partner id (`partner`, `alipay_seller_id`): `2088` and 12 more digits.
    Partner, "partner", "2088 followed by 12 digits", |s| digits(s) && s.len() == 16 && s.starts_with("2088")
);

id_type!(
    /// The merchant's trade number (`out_trade_no`, MAPI `partner_trans_id`), Alipay's idempotency key.
    OutTradeNo, "out_trade_no", "1 to 64 characters of letters, digits, '_' or '-'",
    |s| !s.is_empty() && s.len() <= 64 && s.chars().all(is_id_char)
);

id_type!(
    /// The merchant's refund request number (`out_request_no`, MAPI `partner_refund_id`).
    OutRequestNo, "out_request_no", "1 to 64 characters of letters, digits, '_' or '-'",
    |s| !s.is_empty() && s.len() <= 64 && s.chars().all(is_id_char)
);

id_type!(
    /// Alipay's trade number (`trade_no`, MAPI `alipay_trans_id`).
    TradeNo, "trade_no", "1 to 64 letters or digits",
    |s| !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric())
);

id_type!(
    /// The buyer's payment code (`auth_code`, MAPI `buyer_identity_code`): 16 to 24 digits
    /// beginning 25 to 30.
    AuthCode, "auth_code", "16 to 24 digits beginning 25 to 30",
    |s| digits(s) && (16..=24).contains(&s.len()) && matches!(&s[..2], "25" | "26" | "27" | "28" | "29" | "30")
);

id_type!(
    /// A buyer's Alipay user id (`buyer_user_id`, `user_id`, `open_id`).
    UserId, "user_id", "1 to 64 letters or digits",
    |s| !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric())
);

id_type!(
    /// A store, terminal or operator id the merchant chose: 1 to 32 letters, digits, '_' or '-'.
    MerchantRef, "store_id", "1 to 32 characters of letters, digits, '_' or '-'",
    |s| !s.is_empty() && s.len() <= 32 && s.chars().all(is_id_char)
);

id_type!(
    /// A short free text shown to the buyer (`subject`, `trans_name`): 1 to 256 characters with no
    /// control characters.
    Subject, "subject", "1 to 256 characters, no control characters",
    |s| !s.is_empty() && s.chars().count() <= 256 && !s.chars().any(char::is_control)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_take_only_their_shape() {
        assert!("2021000000000001".parse::<AppId>().is_ok());
        assert!("2021x".parse::<AppId>().is_err());
        assert!("2088021966645500".parse::<Partner>().is_ok());
        assert!("2089021966645500".parse::<Partner>().is_err());
        assert!("HK-STORE7-000123".parse::<OutTradeNo>().is_ok());
        assert!("a b".parse::<OutTradeNo>().is_err());
        assert!("x".repeat(65).parse::<OutTradeNo>().is_err());
        assert!("281234567890123400".parse::<AuthCode>().is_ok());
        assert!("181234567890123400".parse::<AuthCode>().is_err());
        assert!("28123".parse::<AuthCode>().is_err());
        assert!("Noodles & tea".parse::<Subject>().is_ok());
        assert!("a\nb".parse::<Subject>().is_err());
        let err = "".parse::<OutTradeNo>().unwrap_err();
        assert_eq!(err.field, "out_trade_no");
    }
}
