//! The POS side of the front door: Alipay's own OpenAPI, as POS software on Alipay's SDKs speaks
//! it. [`AlipayPos`] is one POS: the app id it signs as, its key (parsed once), and the platform
//! key it verifies answers with; it builds and signs calls (`alipay::openapi::build_request`),
//! posts them as forms and reads the answers (`alipay::openapi::read_reply`). [`FrontDoors`] is a
//! run's: one POS per tenant over one pool, each [`Intent`] as its Alipay method, each answer
//! sorted as the partner API's are.

use std::fmt;
use std::sync::Arc;

use alipay::charset::CharsetError;
use alipay::openapi::trade::{
    TradeCancel, TradeCancelAnswer, TradePay, TradePayAnswer, TradePrecreate, TradePrecreateAnswer, TradeQuery,
    TradeQueryAnswer, TradeRef, TradeRefund, TradeRefundAnswer,
};
use alipay::openapi::{BuildError, Call as OpenapiCall, Reply, RequestMeta, Status, build_request, read_reply};
use alipay::params::Unsigned;
use alipay::time_text::beijing_datetime;
use alipay::{
    Amount, AppId, Charset, Currency, InvalidId, KeyError, MoneyError, Outcome, Params, SignType, Signer,
    UnknownReason, Verifier,
};
use bytes::Bytes;
use http::{Request, header};
use http_body_util::Full;
use zeroize::Zeroizing;

use super::{AMOUNT, Answer, ErrorKind, Http, Intent, REFUND_AMOUNT, Verdict};
use crate::tenants_file::{FrontDoorCredentials, PosTenant};

/// A POS on Alipay's OpenAPI, talking to one front door. Clones share the HTTP pool and keys.
#[derive(Clone)]
pub struct AlipayPos {
    http: Http,
    /// The front door's `gateway.do`.
    pub url: String,
    pub app_id: AppId,
    /// The POS's own key.
    pub signer: Arc<Signer>,
    /// The front door's platform public key ("Alipay's public key" to the POS).
    pub verifier: Arc<Verifier>,
    /// The POS's private key (PKCS#1 PEM) and the platform public key (bare base64), as a POS
    /// vendor configures them in an SDK.
    pub private_key_pem: Zeroizing<String>,
    pub platform_public_key: String,
}

/// A front door's credentials cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("no app_id (only OpenAPI front doors are driven)")]
    NoAppId,
    #[error("sign type {0} (only RSA2 and RSA front doors are driven)")]
    SignType(String),
    #[error("no app_private_key")]
    NoPrivateKey,
    #[error("no alipay_public_key")]
    NoPublicKey,
    #[error(transparent)]
    AppId(#[from] InvalidId),
    #[error("a key does not parse: {0}")]
    Key(#[from] KeyError),
}

/// A call to the front door got no Alipay answer.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("the call could not be written: {0}")]
    Build(#[from] BuildError),
    #[error("the form could not be written: {0}")]
    Form(#[from] CharsetError),
    #[error("the call could not be signed")]
    Sign,
    #[error("the front door's URL is not valid")]
    Url,
    #[error("no answer: {}", .0.name())]
    Transport(ErrorKind),
    #[error("HTTP {0} (Alipay answers every call with 200)")]
    Status(u16),
}

impl AlipayPos {
    /// A POS signing as `app_id` with `private_key_pem` and trusting `platform_public_key`, both
    /// parsed now, for `sign_type` (RSA2 or RSA), sending over `http`.
    pub fn new(
        http: Http,
        url: &str,
        app_id: &str,
        sign_type: SignType,
        private_key_pem: Zeroizing<String>,
        platform_public_key: &str,
    ) -> Result<AlipayPos, CredentialsError> {
        if sign_type == SignType::Md5 {
            return Err(CredentialsError::SignType(sign_type.as_str().to_owned()));
        }
        Ok(AlipayPos {
            http,
            url: url.to_owned(),
            app_id: app_id.parse()?,
            signer: Arc::new(Signer::from_secret(sign_type, &private_key_pem)?),
            verifier: Arc::new(Verifier::from_key_text(sign_type, platform_public_key)?),
            private_key_pem,
            platform_public_key: platform_public_key.to_owned(),
        })
    }

    /// The POS a tenants file's front-door credentials describe.
    pub fn from_credentials(http: Http, door: &FrontDoorCredentials) -> Result<AlipayPos, CredentialsError> {
        let sign_type: SignType =
            door.sign_type.parse().map_err(|_| CredentialsError::SignType(door.sign_type.clone()))?;
        let app_id = door.app_id.as_deref().ok_or(CredentialsError::NoAppId)?;
        let private = door.app_private_key.as_deref().ok_or(CredentialsError::NoPrivateKey)?;
        let public = door.alipay_public_key.as_deref().ok_or(CredentialsError::NoPublicKey)?;
        AlipayPos::new(http, &door.gateway_url, app_id, sign_type, Zeroizing::new(private.to_owned()), public)
    }

    /// The same POS signing with another key (a forger, to a test).
    pub fn with_signer(self, signer: Arc<Signer>) -> AlipayPos {
        AlipayPos { signer, ..self }
    }

    /// The same POS claiming another app id.
    pub fn with_app_id(self, app_id: AppId) -> AlipayPos {
        AlipayPos { app_id, ..self }
    }

    /// The same POS calling another `gateway.do`.
    pub fn with_url(self, url: String) -> AlipayPos {
        AlipayPos { url, ..self }
    }

    /// Signs and sends `call` (with `notify_url`, if given); the answer as read and verified
    /// with the platform key (a bad signature reads `Outcome::Unknown(BadSignature)`).
    pub async fn exec<C: OpenapiCall>(
        &self,
        call: &C,
        notify_url: Option<&str>,
    ) -> Result<Reply<C::Answer>, ExecError> {
        let (code, body) = self.send(&self.params(call, notify_url)?).await?;
        if code != 200 {
            return Err(ExecError::Status(code));
        }
        Ok(self.read::<C>(&body))
    }

    /// The signed parameters of `call`, timestamped now, to send as they are or changed.
    pub fn params<C: OpenapiCall>(&self, call: &C, notify_url: Option<&str>) -> Result<Params, BuildError> {
        let timestamp = beijing_datetime(time::OffsetDateTime::now_utc());
        let meta = RequestMeta {
            app_id: &self.app_id,
            charset: Charset::Utf8,
            timestamp: &timestamp,
            notify_url,
            app_auth_token: None,
        };
        build_request(call, &meta, &self.signer)
    }

    /// Signs `params` again (after a change), as the POS's SDK would have.
    pub fn sign(&self, params: &mut Params) -> Result<(), ExecError> {
        let text = params.canonical(Unsigned::Sign);
        params.set("sign", self.signer.sign(text.as_bytes()).map_err(|_| ExecError::Sign)?);
        Ok(())
    }

    /// Posts `params` as a form; the answer's HTTP status and body.
    pub async fn send(&self, params: &Params) -> Result<(u16, Bytes), ExecError> {
        let form = params.to_form(Charset::Utf8)?;
        let request = Request::post(self.url.as_str())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded;charset=utf-8")
            .body(Full::new(Bytes::from(form)))
            .map_err(|_| ExecError::Url)?;
        self.http.exchange(request).await.map_err(ExecError::Transport)
    }

    /// Reads an answer to `C`, verified with the platform key.
    pub fn read<C: OpenapiCall>(&self, body: &[u8]) -> Reply<C::Answer> {
        read_reply::<C>(body, Charset::Utf8, &self.verifier)
    }
}

/// Never shows the private key.
impl fmt::Debug for AlipayPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlipayPos")
            .field("url", &self.url)
            .field("app_id", &self.app_id)
            .field("sign_type", &self.signer.sign_type())
            .field("platform_public_key", &self.platform_public_key)
            .finish_non_exhaustive()
    }
}

/// A tenant of a run cannot use the front door.
#[derive(Debug, thiserror::Error)]
pub enum FrontDoorError {
    #[error("tenant {0} has no front_door in the tenants file (provision with --front-door)")]
    Missing(String),
    #[error("tenant {slug}'s front door: {source}")]
    Credentials { slug: String, source: CredentialsError },
}

/// A run's POS on each tenant's front door, index for index with its tenants.
pub struct FrontDoors {
    pos: Vec<AlipayPos>,
}

impl FrontDoors {
    /// Each tenant's POS, its keys parsed now (once per tenant); every tenant must have a front door.
    pub fn new(tenants: &[PosTenant], http: &Http) -> Result<FrontDoors, FrontDoorError> {
        let pos = tenants
            .iter()
            .map(|tenant| {
                let door = tenant.front_door.as_ref().ok_or_else(|| FrontDoorError::Missing(tenant.slug.clone()))?;
                AlipayPos::from_credentials(http.clone(), door)
                    .map_err(|source| FrontDoorError::Credentials { slug: tenant.slug.clone(), source })
            })
            .collect::<Result<_, _>>()?;
        Ok(FrontDoors { pos })
    }

    /// Makes `intent` as tenant `tenant`'s POS: its Alipay method, signed, sent, verified, sorted.
    pub async fn send(&self, tenant: usize, intent: &Intent) -> Answer {
        let Some(pos) = self.pos.get(tenant) else { return Answer::Failed(ErrorKind::Build) };
        let built = Built::of(intent);
        let Ok(built) = built else { return Answer::Failed(ErrorKind::Build) };
        match built {
            Built::Pay(call) => sort::<TradePay>(pos.exec(&call, None).await),
            Built::Precreate(call) => sort::<TradePrecreate>(pos.exec(&call, None).await),
            Built::Query(call) => sort::<TradeQuery>(pos.exec(&call, None).await),
            Built::Refund(call) => sort::<TradeRefund>(pos.exec(&call, None).await),
            Built::Cancel(call) => sort::<TradeCancel>(pos.exec(&call, None).await),
        }
    }

    /// Waits (up to 30 s) until the gateway knows tenant `tenant`'s front door: a query for a
    /// trade that does not exist is refused, signed, once it does (`40004`), and answered
    /// unsigned before (`40002 isv.invalid-app-id`). Answers whether it did.
    pub async fn wait_until_known(&self, tenant: usize) -> bool {
        let probe = Intent::Query { out_trade_no: "snapshot-probe".into() };
        for _ in 0..300 {
            if let Answer::Alipay { verdict: Verdict::Refused, .. } = self.send(tenant, &probe).await {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        false
    }
}

/// An intent as its Alipay method.
enum Built {
    Pay(TradePay),
    Precreate(TradePrecreate),
    Query(TradeQuery),
    Refund(TradeRefund),
    Cancel(TradeCancel),
}

/// An intent's field does not fit Alipay's.
#[derive(Debug)]
enum Unfit {
    Id,
    Money,
}

impl From<InvalidId> for Unfit {
    fn from(_: InvalidId) -> Self {
        Unfit::Id
    }
}

impl From<MoneyError> for Unfit {
    fn from(_: MoneyError) -> Self {
        Unfit::Money
    }
}

impl Built {
    fn of(intent: &Intent) -> Result<Built, Unfit> {
        let amount = |text: &str, currency: &str| -> Result<Amount, Unfit> {
            let currency: Currency = currency.parse().map_err(|_| Unfit::Money)?;
            Ok(Amount::parse(text, currency)?)
        };
        let by_number = |no: &str| -> Result<TradeRef, Unfit> { Ok(TradeRef::from(no.parse::<alipay::OutTradeNo>()?)) };
        Ok(match intent {
            Intent::Pay { out_trade_no, auth_code, currency } => {
                let subject = "Load test meal".parse()?;
                let mut pay =
                    TradePay::new(out_trade_no.parse()?, auth_code.parse()?, subject, amount(AMOUNT, currency)?);
                pay.store_id = Some("LT1".parse()?);
                Built::Pay(pay)
            }
            Intent::QrOrder { out_trade_no, currency } => {
                let subject = "Load test order".parse()?;
                Built::Precreate(TradePrecreate::new(out_trade_no.parse()?, subject, amount(AMOUNT, currency)?))
            }
            Intent::Query { out_trade_no } => Built::Query(TradeQuery { trade: by_number(out_trade_no)? }),
            // In the trade's currency: Alipay takes the refund in it when none is named (CNY).
            Intent::Refund { out_trade_no } => Built::Refund(TradeRefund::new(
                by_number(out_trade_no)?,
                Intent::out_request_no(out_trade_no).parse()?,
                amount(REFUND_AMOUNT, "CNY")?,
            )),
            Intent::Cancel { out_trade_no } => Built::Cancel(TradeCancel { trade: by_number(out_trade_no)? }),
        })
    }
}

/// The common fields of an answer.
trait Answered {
    fn status(&self) -> &Status;
}

macro_rules! answered {
    ($($answer:ty),*) => {$(
        impl Answered for $answer {
            fn status(&self) -> &Status {
                &self.status
            }
        }
    )*};
}

answered!(TradePayAnswer, TradePrecreateAnswer, TradeQueryAnswer, TradeRefundAnswer, TradeCancelAnswer);

/// Alipay's codes a report names; any other reads `OTHER`.
const CODES: [&str; 10] = ["10000", "10003", "20000", "20001", "40001", "40002", "40003", "40004", "40005", "40006"];

/// An exchange with the front door as the report counts it.
fn sort<C: OpenapiCall>(result: Result<Reply<C::Answer>, ExecError>) -> Answer
where
    C::Answer: Answered,
{
    let reply = match result {
        Ok(reply) => reply,
        Err(ExecError::Transport(kind)) => return Answer::Failed(kind),
        Err(ExecError::Status(code)) => return Answer::Http { code, status: None },
        Err(_) => return Answer::Failed(ErrorKind::Build),
    };
    match (reply.answer, reply.outcome) {
        (Some(answer), _) => verdict(answer.status()),
        (None, Outcome::Unknown(UnknownReason::BadSignature | UnknownReason::Unsigned)) => {
            Answer::Failed(ErrorKind::BadSignature)
        }
        (None, _) => Answer::Failed(ErrorKind::Unreadable),
    }
}

/// `10000` succeeded; `40004` was refused; `10003` or `ACQ.SYSTEM_ERROR` is not known yet;
/// anything else is an error.
fn verdict(status: &Status) -> Answer {
    let code = CODES.into_iter().find(|known| *known == status.code).unwrap_or("OTHER");
    let verdict = match code {
        _ if status.sub_code.as_deref() == Some("ACQ.SYSTEM_ERROR") => Verdict::Unknown,
        "10000" => Verdict::Success,
        "10003" => Verdict::Unknown,
        "40004" => Verdict::Refused,
        _ => Verdict::Error,
    };
    Answer::Alipay { code, verdict }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use alipay::PrivateKey;
    use alipay::openapi::write_answer;

    use super::*;

    fn status(code: &str, sub_code: Option<&str>) -> Status {
        Status { code: code.into(), msg: String::new(), sub_code: sub_code.map(Into::into), sub_msg: None }
    }

    #[test]
    fn alipay_codes_sort_as_the_partner_apis_statuses() {
        let sorted = |code, sub| verdict(&status(code, sub));
        assert_eq!(sorted("10000", None), Answer::Alipay { code: "10000", verdict: Verdict::Success });
        let refused = sorted("40004", Some("ACQ.BUYER_BALANCE_NOT_ENOUGH"));
        assert_eq!(refused, Answer::Alipay { code: "40004", verdict: Verdict::Refused });
        assert_eq!(sorted("10003", None), Answer::Alipay { code: "10003", verdict: Verdict::Unknown });
        let system = sorted("20000", Some("ACQ.SYSTEM_ERROR"));
        assert_eq!(system, Answer::Alipay { code: "20000", verdict: Verdict::Unknown });
        let rejected = sorted("40002", Some("isv.invalid-signature"));
        assert_eq!(rejected, Answer::Alipay { code: "40002", verdict: Verdict::Error });
        assert_eq!(sorted("99999", None), Answer::Alipay { code: "OTHER", verdict: Verdict::Error });
    }

    #[tokio::test]
    async fn an_answer_not_signed_by_the_platform_key_is_an_error() {
        let platform = PrivateKey::generate().unwrap();
        let pos = AlipayPos::new(
            Http::new(Duration::from_secs(1), 1),
            "http://127.0.0.1:9/alipay/gateway.do",
            "2099000000000001",
            SignType::Rsa2,
            platform.to_pkcs1_pem().unwrap(),
            &platform.public_key().unwrap().to_base64(),
        )
        .unwrap();
        let member = r#"{"code":"10000","msg":"Success","out_trade_no":"t1"}"#;
        let key = "alipay_trade_pay_response";
        let signed = write_answer(key, member, Some(&pos.signer), Charset::Utf8).unwrap();
        let paid = Answer::Alipay { code: "10000", verdict: Verdict::Success };
        assert_eq!(sort::<TradePay>(Ok(pos.read::<TradePay>(&signed))), paid);
        let forger = Signer::rsa2(Arc::new(PrivateKey::generate().unwrap())).unwrap();
        let forged = write_answer(key, member, Some(&forger), Charset::Utf8).unwrap();
        assert_eq!(sort::<TradePay>(Ok(pos.read::<TradePay>(&forged))), Answer::Failed(ErrorKind::BadSignature));
        let unsigned = write_answer(key, member, None, Charset::Utf8).unwrap();
        assert_eq!(sort::<TradePay>(Ok(pos.read::<TradePay>(&unsigned))), Answer::Failed(ErrorKind::BadSignature));
        assert_eq!(sort::<TradePay>(Ok(pos.read::<TradePay>(b"<html>"))), Answer::Failed(ErrorKind::Unreadable));
    }

    #[tokio::test]
    async fn every_tenant_of_a_front_door_run_needs_its_credentials() {
        let tenant = PosTenant {
            slug: "lt-7".into(),
            key_id: "k".into(),
            secret: "s".into(),
            app_id: "2021000000000007".into(),
            tenant_id: None,
            dialect: "openapi".into(),
            sign_type: "RSA2".into(),
            currency: None,
            front_door: None,
            environment: None,
        };
        let Err(missing) = FrontDoors::new(std::slice::from_ref(&tenant), &Http::new(Duration::from_secs(1), 1)) else {
            panic!("a tenant without a front door")
        };
        assert_eq!(
            missing.to_string(),
            "tenant lt-7 has no front_door in the tenants file (provision with --front-door)"
        );
        let door = FrontDoorCredentials {
            gateway_url: "http://127.0.0.1:9/alipay/gateway.do".into(),
            app_id: Some("2099000000000007".into()),
            partner: None,
            sign_type: "RSA2".into(),
            app_private_key: Some("not a key".into()),
            app_private_key_pkcs8: None,
            alipay_public_key: Some("not a key either".into()),
            md5_key: None,
        };
        let broken = PosTenant { front_door: Some(door), ..tenant };
        let Err(unusable) = FrontDoors::new(&[broken], &Http::new(Duration::from_secs(1), 1)) else {
            panic!("a key that does not parse")
        };
        assert!(unusable.to_string().starts_with("tenant lt-7's front door: a key does not parse"), "{unusable}");
    }

    #[test]
    fn intents_become_alipay_methods() {
        let pay =
            Intent::Pay { out_trade_no: "t1".into(), auth_code: "281234567890123400".into(), currency: "CNY".into() };
        let Ok(Built::Pay(pay)) = Built::of(&pay) else { panic!("a pay") };
        assert_eq!((pay.total_amount.to_string().as_str(), pay.trans_currency), ("58.00", None));
        let Ok(Built::Refund(refund)) = Built::of(&Intent::Refund { out_trade_no: "t1".into() }) else { panic!() };
        assert_eq!(refund.out_request_no.map(|n| n.to_string()).as_deref(), Some("rt1"));
        assert!(Built::of(&Intent::Query { out_trade_no: "not a number!".into() }).is_err());
    }
}
