//! Outbound webhooks: what kb needs to call a subscriber's URL, and nothing about when.
//!
//! A webhook URL is chosen by a client but requested by the server, from inside whatever
//! network the server runs in. That makes it a way to reach addresses the client could not
//! reach itself (server-side request forgery: loopback services, the private network, the
//! cloud provider's metadata endpoint). So the rules of where a delivery may go live in one
//! place, [`address`], and are applied twice: when a URL is registered, for a clear 422, and
//! again by [`client`] on every connection, because the DNS answer at delivery time is the one
//! that counts.
//!
//! Deliveries follow the Standard Webhooks specification (<https://www.standardwebhooks.com>):
//! [`sign`] makes the `webhook-signature` header, so a receiver can verify kb's requests with
//! any of that specification's libraries, and [`client`] treats 2xx as delivered, 410 as "stop
//! sending" and everything else, redirects included, as a failure to retry later.
//!
//! Storage, scheduling, retries and the HTTP API of webhooks are elsewhere; this module does no
//! I/O beyond resolving names and sending one request.

pub mod address;
pub mod client;
pub mod sign;
