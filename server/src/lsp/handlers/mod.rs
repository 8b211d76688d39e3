//! One file per LSP method.

pub mod code_action;
pub mod code_action_resolve;
pub mod code_lens;
pub mod diagnostic;
pub mod did_change;
pub mod did_change_configuration;
pub mod did_close;
pub mod did_open;
pub mod execute_command;
pub mod hover;
pub mod indexing;
pub mod initialize;
pub mod publish;
