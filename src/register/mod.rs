//! Registers, audit log and reports.

pub mod audit;
