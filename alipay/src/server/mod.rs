//! Alipay's side of the wire: reading a `gateway.do` request and answering it as Alipay does.
//! Shared by the sandbox (an Alipay stand-in) and the gateway's front door (an Alipay-compatible
//! `gateway.do` for POS software written on the official SDKs), so both answer byte for byte alike.
//!
//! # Layout
//! - [`request`]: decoding parameters from the query and the body, in their charset.
//! - [`mapi`]: the MAPI gateway's parameter reading and refusals.
//! - [`openapi`]: the OpenAPI gateway's checks (in Alipay's order), its error statuses, reading
//!   `biz_content`, and answer members as Alipay writes them.

pub mod mapi;
pub mod openapi;
pub mod request;

pub use request::{GatewayRequest, Peek, RequestError, read};
