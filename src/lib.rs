//! hubsoak: load, stress and soak testing for JupyterHub.
//!
//! Data flows one way: raw input → `config` (which builds each runner's own settings
//! type) → a runner (`soak`, `oneshot`, `demo`) → the hub client (`hub`) → metrics and a
//! report (`metrics`, `report`). `mockhub` is a JupyterHub simulator for tests and demos.

pub mod admin;
pub mod cli;
pub mod config;
pub mod demo;
pub mod hub;
pub mod journey;
pub mod logging;
pub mod metrics;
pub mod mockhub;
pub mod names;
pub mod oneshot;
pub mod out;
pub mod process;
pub mod report;
pub mod serve;
pub mod signals;
pub mod soak;
pub mod voice;
