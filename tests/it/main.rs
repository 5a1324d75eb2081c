//! The one integration test binary: DNS cases as data, real clients, the command line,
//! objects-file reloads and malformed packets.

mod abuse;
mod any;
mod apiserver;
mod autopath;
mod bind;
mod cases;
mod cli;
mod clients;
mod compat;
mod deploy;
mod files;
mod forward;
mod fuzzed;
mod hosts;
mod k8s_external;
mod live;
mod operability;
mod packets;
mod process;
mod readme;
mod rewrite;
mod support;
mod template;
mod upstream;
