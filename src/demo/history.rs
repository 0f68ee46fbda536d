//! Release histories of the demo services: one entry per commit and tag,
//! oldest first. `repos.rs` turns them into git repositories.

use super::service::Release;

/// Status that a healthy release returns from `GET /health`.
const HEALTHY: u16 = 200;

/// One service's repository.
pub struct ServiceHistory {
    pub name: &'static str,
    /// Releases, oldest first. Each one is a commit on `main` with a tag.
    pub releases: &'static [ReleaseSpec],
}

/// One release: the commit's subject, its `release.toml` and its
/// `src/handler.txt`.
pub struct ReleaseSpec {
    /// Tag name and the version in `release.toml`.
    pub version: &'static str,
    pub subject: &'static str,
    /// Hours between the commit and the build's anchor time.
    pub age_hours: i64,
    pub health_status: u16,
    pub latency_ms: u64,
    pub startup_ms: u64,
    pub message: &'static str,
    /// Pseudo-code of the request handlers, so that each commit has a diff.
    pub handler: &'static str,
}

impl ReleaseSpec {
    /// Returns the contents of this release's `release.toml`.
    pub fn release(&self) -> Release {
        Release {
            version: self.version.to_owned(),
            health_status: self.health_status,
            latency_ms: self.latency_ms,
            startup_ms: self.startup_ms,
            message: self.message.to_owned(),
        }
    }
}

/// The demo services. `gateway` calls `orders` and `payments`, and `orders`
/// calls `inventory` and `payments`.
pub const SERVICES: &[ServiceHistory] = &[GATEWAY, ORDERS, PAYMENTS, INVENTORY];

const GATEWAY: ServiceHistory = ServiceHistory {
    name: "gateway",
    releases: &[
        ReleaseSpec {
            version: "v3.0.0",
            subject: "gateway: route /orders and /payments to their services",
            age_hours: 410,
            health_status: HEALTHY,
            latency_ms: 6,
            startup_ms: 1000,
            message: "ok",
            handler: "ANY /orders/*   -> orders   (timeout 1s)\n\
                      ANY /payments/* -> payments (timeout 1s)\n",
        },
        ReleaseSpec {
            version: "v3.1.0",
            subject: "gateway: add request ids to access logs",
            age_hours: 290,
            health_status: HEALTHY,
            latency_ms: 7,
            startup_ms: 1000,
            message: "ok",
            handler: "ANY /orders/*   -> orders   (timeout 1s)\n\
                      ANY /payments/* -> payments (timeout 1s)\n\
                      every request: set X-Request-Id, log it with the status\n",
        },
        ReleaseSpec {
            version: "v3.1.1",
            subject: "gateway: raise upstream timeout to 3s",
            age_hours: 170,
            health_status: HEALTHY,
            latency_ms: 7,
            startup_ms: 1000,
            message: "ok",
            handler: "ANY /orders/*   -> orders   (timeout 3s)\n\
                      ANY /payments/* -> payments (timeout 3s)\n\
                      every request: set X-Request-Id, log it with the status\n",
        },
        ReleaseSpec {
            version: "v3.2.0",
            subject: "gateway: rate-limit clients by API key",
            age_hours: 50,
            health_status: HEALTHY,
            latency_ms: 9,
            startup_ms: 1200,
            message: "ok",
            handler: "ANY /orders/*   -> orders   (timeout 3s)\n\
                      ANY /payments/* -> payments (timeout 3s)\n\
                      every request: set X-Request-Id, log it with the status\n\
                      every request: allow 50 per second per API key, else 429\n",
        },
    ],
};

const ORDERS: ServiceHistory = ServiceHistory {
    name: "orders",
    releases: &[
        ReleaseSpec {
            version: "v1.0.0",
            subject: "orders: create orders and reserve stock",
            age_hours: 430,
            health_status: HEALTHY,
            latency_ms: 15,
            startup_ms: 1600,
            message: "ok",
            handler: "POST /orders\n\
                      \x20 inventory.reserve(items)\n\
                      \x20 insert order, return 201\n",
        },
        ReleaseSpec {
            version: "v1.1.0",
            subject: "orders: charge payment after stock is reserved",
            age_hours: 310,
            health_status: HEALTHY,
            latency_ms: 18,
            startup_ms: 1600,
            message: "ok",
            handler: "POST /orders\n\
                      \x20 inventory.reserve(items)\n\
                      \x20 payments.charge(total)\n\
                      \x20 insert order, return 201\n",
        },
        ReleaseSpec {
            version: "v1.2.0",
            subject: "orders: paginate order history",
            age_hours: 200,
            health_status: HEALTHY,
            latency_ms: 18,
            startup_ms: 1800,
            message: "ok",
            handler: "POST /orders\n\
                      \x20 inventory.reserve(items)\n\
                      \x20 payments.charge(total)\n\
                      \x20 insert order, return 201\n\
                      GET /orders?page=N\n\
                      \x20 return 50 orders per page, newest first\n",
        },
        ReleaseSpec {
            version: "v1.2.1",
            subject: "orders: release reserved stock when payment fails",
            age_hours: 120,
            health_status: HEALTHY,
            latency_ms: 19,
            startup_ms: 1800,
            message: "ok",
            handler: "POST /orders\n\
                      \x20 inventory.reserve(items)\n\
                      \x20 payments.charge(total), on failure inventory.release(items)\n\
                      \x20 insert order, return 201\n\
                      GET /orders?page=N\n\
                      \x20 return 50 orders per page, newest first\n",
        },
        ReleaseSpec {
            version: "v1.3.0",
            subject: "orders: emit order events for the mailer",
            age_hours: 26,
            health_status: HEALTHY,
            latency_ms: 21,
            startup_ms: 2000,
            message: "ok",
            handler: "POST /orders\n\
                      \x20 inventory.reserve(items)\n\
                      \x20 payments.charge(total), on failure inventory.release(items)\n\
                      \x20 insert order, emit order.created, return 201\n\
                      GET /orders?page=N\n\
                      \x20 return 50 orders per page, newest first\n",
        },
    ],
};

const PAYMENTS: ServiceHistory = ServiceHistory {
    name: "payments",
    releases: &[
        ReleaseSpec {
            version: "v2.0.0",
            subject: "payments: charge cards through the new processor client",
            age_hours: 460,
            health_status: HEALTHY,
            latency_ms: 25,
            startup_ms: 1400,
            message: "ok",
            handler: "POST /charges\n\
                      \x20 processor.charge(amount, card token, timeout 5s)\n\
                      \x20 return 201 with the charge id\n",
        },
        ReleaseSpec {
            version: "v2.1.0",
            subject: "payments: store idempotency keys for charges",
            age_hours: 340,
            health_status: HEALTHY,
            latency_ms: 27,
            startup_ms: 1400,
            message: "ok",
            handler: "POST /charges\n\
                      \x20 return 409 when the idempotency key was seen\n\
                      \x20 processor.charge(amount, card token, timeout 5s)\n\
                      \x20 return 201 with the charge id\n",
        },
        ReleaseSpec {
            version: "v2.1.1",
            subject: "payments: lower processor timeout to 2s",
            age_hours: 250,
            health_status: HEALTHY,
            latency_ms: 24,
            startup_ms: 1400,
            message: "ok",
            handler: "POST /charges\n\
                      \x20 return 409 when the idempotency key was seen\n\
                      \x20 processor.charge(amount, card token, timeout 2s)\n\
                      \x20 return 201 with the charge id\n",
        },
        ReleaseSpec {
            version: "v2.2.0",
            subject: "payments: record refunds in the ledger",
            age_hours: 150,
            health_status: HEALTHY,
            latency_ms: 26,
            startup_ms: 1600,
            message: "ok",
            handler: "POST /charges\n\
                      \x20 return 409 when the idempotency key was seen\n\
                      \x20 processor.charge(amount, card token, timeout 2s)\n\
                      \x20 return 201 with the charge id\n\
                      POST /refunds\n\
                      \x20 processor.refund(charge id), append the refund to the ledger\n",
        },
        ReleaseSpec {
            version: "v2.3.0",
            subject: "payments: retry card declines once",
            age_hours: 3,
            health_status: 500,
            latency_ms: 35,
            startup_ms: 1600,
            message: "card processor client: nil pointer in retry loop",
            handler: "POST /charges\n\
                      \x20 return 409 when the idempotency key was seen\n\
                      \x20 processor.charge(amount, card token, timeout 2s)\n\
                      \x20 on decline: processor.retry(last attempt)\n\
                      \x20 return 201 with the charge id\n\
                      POST /refunds\n\
                      \x20 processor.refund(charge id), append the refund to the ledger\n",
        },
    ],
};

const INVENTORY: ServiceHistory = ServiceHistory {
    name: "inventory",
    releases: &[
        ReleaseSpec {
            version: "v1.0.0",
            subject: "inventory: serve stock counts per item",
            age_hours: 500,
            health_status: HEALTHY,
            latency_ms: 8,
            startup_ms: 800,
            message: "ok",
            handler: "GET /stock/{item}\n\
                      \x20 return the count on hand\n",
        },
        ReleaseSpec {
            version: "v1.1.0",
            subject: "inventory: cache stock counts for 5 seconds",
            age_hours: 380,
            health_status: HEALTHY,
            latency_ms: 5,
            startup_ms: 1000,
            message: "ok",
            handler: "GET /stock/{item}\n\
                      \x20 return the count on hand, cached for 5s\n",
        },
        ReleaseSpec {
            version: "v1.1.1",
            subject: "inventory: fix off-by-one in reserved count",
            age_hours: 220,
            health_status: HEALTHY,
            latency_ms: 5,
            startup_ms: 1000,
            message: "ok",
            handler: "GET /stock/{item}\n\
                      \x20 return the count on hand minus reserved, cached for 5s\n",
        },
        ReleaseSpec {
            version: "v1.2.0",
            subject: "inventory: add bulk reservation endpoint",
            age_hours: 75,
            health_status: HEALTHY,
            latency_ms: 6,
            startup_ms: 1200,
            message: "ok",
            handler: "GET /stock/{item}\n\
                      \x20 return the count on hand minus reserved, cached for 5s\n\
                      POST /reservations\n\
                      \x20 reserve every item or none, return 409 when one is short\n",
        },
    ],
};
