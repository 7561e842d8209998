//! The engine-side training loop: mini-batches from a data set held by the engine, one step
//! after another, with progress reported as it goes and cancellation between (never within)
//! variable updates.

use super::Session;
use crate::data::Dataset;
use crate::error::SessionError;
use crate::fit::{FitConfig, FitProgress, FitSummary};
use crate::training::fit_loop;

impl Session {
    /// Trains on `data` as `config` says, calling `on_progress` every `report_every` steps
    /// and after the last. A cancel (see [`Session::cancel_token`]) ends it with
    /// [`SessionError::Cancelled`] after the step in flight; the updates made so far stay.
    pub fn fit(
        &mut self,
        data: &Dataset,
        config: &FitConfig,
        on_progress: &mut dyn FnMut(&FitProgress),
    ) -> Result<FitSummary, SessionError> {
        let mut on_progress = crate::fit::with_summaries(config, on_progress)?;
        fit_loop(data, config, &mut on_progress, &mut |feeds| {
            let values = self.run(&[config.loss, config.train], feeds)?;
            let loss = values[0].scalar_f64().unwrap_or(f64::NAN);
            let global_step = values[1].scalar_f64().map_or(-1, |s| s as i64);
            self.record(global_step, loss);
            Ok((loss, global_step))
        })
    }
}
