//! Parley's library: what every binary (the Lambda functions, the media task and the
//! local stack) shares.
//!
//! - [`domain`]: the event-sourced streams (tenant, campaign, lead, call, appointment),
//!   their events, commands and state. Pure: no I/O.
//! - [`aggregate`]: running a command against a stream (load, decide, append, retry on
//!   conflict).
//! - Ports, each a trait with an AWS and an embedded adapter: [`eventstore`],
//!   [`readmodel`], [`queue`], [`blob`].
//! - [`embedded`]: SQLite (WAL) and files under one data directory.
//! - [`aws`]: DynamoDB, SQS and S3 through the AWS SDK.
//! - [`config`]: typed configuration from the environment; [`backend`] wires the ports.

pub mod aggregate;
pub mod appointmentviews;
pub mod aws;
pub mod backend;
pub mod blob;
pub mod campaignviews;
pub(crate) mod carrier_http;
pub mod clock;
pub mod config;
pub mod confirmation;
pub mod dialqueue;
pub mod domain;
pub mod embedded;
pub mod error;
pub mod event;
pub mod eventstore;
pub mod exotel;
pub mod flow;
pub mod leadimport;
pub mod leadviews;
pub mod outbound;
pub mod outcome;
pub mod qualify;
pub mod queue;
pub mod readmodel;
pub mod secrets;
pub mod slots;
pub mod streamtoken;
pub mod telemetry;
pub mod twilio;
pub mod views;

pub use error::StoreError;
