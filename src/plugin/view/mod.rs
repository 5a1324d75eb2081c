//! `view`: a server block whose expressions must hold for a query to be routed to it
//! (split DNS). Blocks for the same zone are tried in Corefile order; a block without a view
//! takes what no view before it took. The expressions are compiled when the Corefile loads;
//! routing evaluates them per query ([`crate::server::Router`]). The block's metrics carry the
//! view's name in their `view` label.

pub mod config;
pub mod expr;

use std::sync::Arc;

use crate::plugin::setup::{Setup, SetupError};

/// A block's view: its name and what must hold.
#[derive(Debug)]
pub struct View {
    pub name: String,
    exprs: Vec<Arc<expr::Expr>>,
}

impl View {
    /// Whether every expression holds for `q`.
    pub fn admits(&self, q: &expr::Query) -> bool {
        self.exprs.iter().all(|e| e.holds(q))
    }
}

/// Gives the block its view.
pub async fn setup(cfg: &config::ViewConfig, s: &mut Setup<'_>) -> Result<(), SetupError> {
    s.view = Some(Arc::new(View {
        name: cfg.name.clone(),
        exprs: cfg.exprs.iter().map(|(_, e)| e.clone()).collect(),
    }));
    Ok(())
}
