//! Delivery of the outbox: mails klar sends itself by SMTP (`mail`) and
//! signed webhook POSTs to the CRM (`webhook`), both retried with backoff
//! and parked after repeated failures.

pub mod mail;
pub mod webhook;
