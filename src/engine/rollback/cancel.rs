//! Cancelling a run. The executor looks at the token at its safe points
//! (between steps, and while it waits for health), never in the middle of
//! a checkout or a restart command.

use tokio::sync::watch;

/// The executor's side of a cancel request.
#[derive(Debug, Clone)]
pub struct Cancel(Option<watch::Receiver<bool>>);

/// The side that requests a cancel: a key in the dashboard, SIGINT on the
/// command line.
#[derive(Debug)]
pub struct CancelHandle(watch::Sender<bool>);

impl Cancel {
    /// Returns a token that is never cancelled.
    pub fn never() -> Cancel {
        Cancel(None)
    }

    /// Returns a connected handle and token.
    pub fn pair() -> (CancelHandle, Cancel) {
        let (sender, receiver) = watch::channel(false);
        (CancelHandle(sender), Cancel(Some(receiver)))
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.as_ref().is_some_and(|receiver| *receiver.borrow())
    }

    /// Waits until a cancel is requested. A dropped handle never cancels.
    pub async fn cancelled(&self) {
        if let Some(receiver) = &self.0 {
            let mut receiver = receiver.clone();
            if receiver.wait_for(|cancelled| *cancelled).await.is_ok() {
                return;
            }
        }
        std::future::pending::<()>().await;
    }
}

impl CancelHandle {
    /// Requests a cancel. Later requests change nothing.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn cancel_wakes_the_waiter() {
        let (handle, token) = Cancel::pair();
        let waiter = tokio::spawn(async move { token.cancelled().await });
        handle.cancel();

        assert!(
            tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn dropped_handle_never_cancels() {
        let (handle, token) = Cancel::pair();
        drop(handle);
        let waited = tokio::time::timeout(Duration::from_millis(50), token.cancelled()).await;

        assert!(waited.is_err());
        assert!(!token.is_cancelled());
    }

    #[test]
    fn never_is_not_cancelled() {
        assert!(!Cancel::never().is_cancelled());
    }
}
