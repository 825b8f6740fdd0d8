//! hubsoak: load, stress and soak testing for JupyterHub.

pub mod hub;
pub mod names;
pub mod mockhub;
