//! The identifiers and codes Global's files carry that the `alipay` crate has no type for; each
//! parsed once, with [`alipay::InvalidId`] naming the rule it broke.

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

alipay::id_type!(
    /// Global's `Partner_transaction_id`: the merchant's id of the movement. The partner's
    /// `partner_trans_id` for a payment, reversal or cancel, its `partner_refund_id` for a refund;
    /// in the settlement file, Alipay's `transaction_id` for a cancel.
    PartnerTransactionId, "Partner_transaction_id", "1 to 64 characters of letters, digits, '_' or '-'",
    |s| !s.is_empty() && s.len() <= 64 && s.chars().all(is_id_char)
);

alipay::id_type!(
    /// A merchant category code (`Secondary_merchant_industry`): four digits, e.g. `5812`.
    Mcc, "Secondary_merchant_industry", "4 digits",
    |s| s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit())
);

alipay::id_type!(
    /// Global's `Order_scene`, kept as written (e.g. `shopQrCode`): letters, digits, '_' or '-'.
    OrderScene, "Order_scene", "1 to 32 characters of letters, digits, '_' or '-'",
    |s| !s.is_empty() && s.len() <= 32 && s.chars().all(is_id_char)
);

alipay::id_type!(
    /// The account bill's `账务流水号`: Alipay's number of one balance movement, 1 to 64 letters
    /// or digits.
    EntryNo, "账务流水号", "1 to 64 letters or digits",
    |s| !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric())
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_take_only_their_shape() {
        assert!("EASA-20170801233604653-5GP0GVWNY".parse::<PartnerTransactionId>().is_ok());
        assert!("a|b".parse::<PartnerTransactionId>().is_err());
        assert!("5812".parse::<Mcc>().is_ok());
        assert!("581".parse::<Mcc>().is_err());
        assert!("shopQrCode".parse::<OrderScene>().is_ok());
        assert_eq!("".parse::<OrderScene>().unwrap_err().field, "Order_scene");
    }
}
