//! Helpers shared by the end-to-end tests; each test binary uses the parts it needs.
#![allow(dead_code)]

pub mod fixes;
pub mod lsp_client;
pub mod synthetic;
pub mod temp;
