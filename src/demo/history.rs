//! Release histories of the demo services: one entry per commit and tag,
//! oldest first, with the data each release reads and the writes that stand
//! for its traffic. `repos.rs` turns them into git repositories, and
//! `seed.rs` turns the data into the services' data and backups.

use super::data::{DataSpec, Store};
use super::service::Release;

/// Status that a healthy release returns from `GET /health`.
const HEALTHY: u16 = 200;

/// One service's repository.
pub struct ServiceHistory {
    pub name: &'static str,
    /// Storage kind of the service's data; `None` for a service without
    /// data.
    pub store: Option<Store>,
    /// SQL migrations of the `sqlite` store, oldest first: entry N - 1
    /// moves the schema from version N - 1 to N.
    pub migrations: &'static [&'static str],
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
    /// The data this release reads; `None` when the service has no data.
    pub data: Option<ReleaseData>,
}

/// The data of one release.
pub struct ReleaseData {
    /// Schema version the release migrates to and reads.
    pub schema: u32,
    /// The data the health check reads, as [`DataSpec::check`] describes.
    pub check: &'static str,
    /// Writes that stand for the traffic the release served, applied by
    /// [`super::data::write`] while the demo is built.
    pub traffic: &'static [&'static str],
}

impl ReleaseSpec {
    /// Returns the contents of this release's `release.toml`.
    pub fn release(&self, history: &ServiceHistory) -> Release {
        Release {
            version: self.version.to_owned(),
            health_status: self.health_status,
            latency_ms: self.latency_ms,
            startup_ms: self.startup_ms,
            message: self.message.to_owned(),
            data: self.data_spec(history),
        }
    }

    /// Returns the `[data]` table of this release's `release.toml`.
    pub fn data_spec(&self, history: &ServiceHistory) -> Option<DataSpec> {
        let data = self.data.as_ref()?;
        let store = history.store?;
        let migrations = match store {
            Store::Sqlite => history.migrations[..data.schema as usize]
                .iter()
                .map(|sql| (*sql).to_owned())
                .collect(),
            Store::Directory => Vec::new(),
        };
        Some(DataSpec {
            store,
            schema: data.schema,
            migrations,
            check: data.check.to_owned(),
        })
    }
}

/// The demo services. `gateway` calls `orders` and `payments`, and `orders`
/// calls `inventory` and `payments`. `gateway` keeps no data, `orders` and
/// `payments` keep SQLite databases, and `inventory` keeps a folder.
pub const SERVICES: &[ServiceHistory] = &[GATEWAY, ORDERS, PAYMENTS, INVENTORY];

const GATEWAY: ServiceHistory = ServiceHistory {
    name: "gateway",
    store: None,
    migrations: &[],
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
            data: None,
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
            data: None,
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
            data: None,
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
            data: None,
        },
    ],
};

/// The newest release of `orders` renames `charge_id` to `payment_id`, so
/// the releases before it cannot read its schema: rolling it back needs its
/// data rolled back too.
const ORDERS: ServiceHistory = ServiceHistory {
    name: "orders",
    store: Some(Store::Sqlite),
    migrations: &[
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL, \
         quantity INTEGER NOT NULL, created_at TEXT NOT NULL);",
        "ALTER TABLE orders ADD COLUMN charge_id TEXT; \
         ALTER TABLE orders ADD COLUMN total_cents INTEGER;",
        "CREATE INDEX orders_by_created_at ON orders (created_at);",
        "ALTER TABLE orders RENAME COLUMN charge_id TO payment_id; \
         CREATE TABLE order_events (id INTEGER PRIMARY KEY, \
         order_id INTEGER NOT NULL REFERENCES orders (id), kind TEXT NOT NULL, \
         payment_id TEXT, created_at TEXT NOT NULL);",
    ],
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
            data: Some(ReleaseData {
                schema: 1,
                check: "SELECT id, item, quantity, created_at FROM orders LIMIT 1",
                traffic: &["INSERT INTO orders (item, quantity, created_at) VALUES \
                     ('desk lamp', 2, datetime('now', '-428 hours')), \
                     ('notebook', 5, datetime('now', '-415 hours'));"],
            }),
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
            data: Some(ReleaseData {
                schema: 2,
                check: "SELECT id, item, quantity, charge_id, total_cents, created_at FROM orders LIMIT 1",
                traffic: &[
                    "INSERT INTO orders (item, quantity, charge_id, total_cents, created_at) VALUES \
                     ('standing desk', 1, 'ch_1001', 42900, datetime('now', '-300 hours')), \
                     ('monitor arm', 2, 'ch_1002', 11800, datetime('now', '-250 hours'));",
                ],
            }),
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
            data: Some(ReleaseData {
                schema: 3,
                check: "SELECT id, item, quantity, charge_id, total_cents, created_at FROM orders \
                        ORDER BY created_at DESC LIMIT 50",
                traffic: &[
                    "INSERT INTO orders (item, quantity, charge_id, total_cents, created_at) VALUES \
                     ('office chair', 1, 'ch_1003', 31900, datetime('now', '-190 hours')), \
                     ('desk lamp', 1, 'ch_1004', 3900, datetime('now', '-150 hours'));",
                ],
            }),
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
            data: Some(ReleaseData {
                schema: 3,
                check: "SELECT id, item, quantity, charge_id, total_cents, created_at FROM orders \
                        ORDER BY created_at DESC LIMIT 50",
                traffic: &[
                    "INSERT INTO orders (item, quantity, charge_id, total_cents, created_at) VALUES \
                     ('notebook', 10, 'ch_1005', 2500, datetime('now', '-100 hours')), \
                     ('cable tray', 3, 'ch_1006', 5400, datetime('now', '-40 hours'));",
                ],
            }),
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
            data: Some(ReleaseData {
                schema: 4,
                check: "SELECT o.id, o.payment_id, o.total_cents, count(e.id) FROM orders AS o \
                        LEFT JOIN order_events AS e ON e.order_id = o.id \
                        GROUP BY o.id ORDER BY o.created_at DESC LIMIT 50",
                traffic: &[
                    "INSERT INTO orders (item, quantity, payment_id, total_cents, created_at) VALUES \
                     ('standing desk', 2, 'ch_1007', 85800, datetime('now', '-20 hours'));",
                    "INSERT INTO order_events (order_id, kind, payment_id, created_at) \
                     SELECT id, 'order.created', payment_id, created_at FROM orders \
                     WHERE id = last_insert_rowid();",
                ],
            }),
        },
    ],
};

/// Every schema change of `payments` only adds tables, so each release
/// reads the schema of the releases after it.
const PAYMENTS: ServiceHistory = ServiceHistory {
    name: "payments",
    store: Some(Store::Sqlite),
    migrations: &[
        "CREATE TABLE charges (id INTEGER PRIMARY KEY, amount_cents INTEGER NOT NULL, \
         card_token TEXT NOT NULL, processor_id TEXT, created_at TEXT NOT NULL);",
        "CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, \
         charge_id INTEGER NOT NULL REFERENCES charges (id), created_at TEXT NOT NULL);",
        "CREATE TABLE refunds (id INTEGER PRIMARY KEY, \
         charge_id INTEGER NOT NULL REFERENCES charges (id), \
         amount_cents INTEGER NOT NULL, created_at TEXT NOT NULL);",
    ],
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
            data: Some(ReleaseData {
                schema: 1,
                check: "SELECT id, amount_cents, card_token, processor_id FROM charges LIMIT 1",
                traffic: &[
                    "INSERT INTO charges (amount_cents, card_token, processor_id, created_at) VALUES \
                     (42900, 'tok_visa_4242', 'pr_5001', datetime('now', '-450 hours')), \
                     (11800, 'tok_mc_4444', 'pr_5002', datetime('now', '-400 hours'));",
                ],
            }),
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
            data: Some(ReleaseData {
                schema: 2,
                check: "SELECT c.id, c.amount_cents, k.key FROM charges AS c \
                        LEFT JOIN idempotency_keys AS k ON k.charge_id = c.id LIMIT 1",
                traffic: &[
                    "INSERT INTO charges (amount_cents, card_token, processor_id, created_at) VALUES \
                     (31900, 'tok_visa_1881', 'pr_5003', datetime('now', '-330 hours'));",
                    "INSERT INTO idempotency_keys (key, charge_id, created_at) VALUES \
                     ('order-1003', last_insert_rowid(), datetime('now', '-330 hours'));",
                ],
            }),
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
            data: Some(ReleaseData {
                schema: 2,
                check: "SELECT c.id, c.amount_cents, k.key FROM charges AS c \
                        LEFT JOIN idempotency_keys AS k ON k.charge_id = c.id LIMIT 1",
                traffic: &[
                    "INSERT INTO charges (amount_cents, card_token, processor_id, created_at) VALUES \
                     (3900, 'tok_amex_0005', 'pr_5004', datetime('now', '-240 hours'));",
                    "INSERT INTO idempotency_keys (key, charge_id, created_at) VALUES \
                     ('order-1004', last_insert_rowid(), datetime('now', '-240 hours'));",
                ],
            }),
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
            data: Some(ReleaseData {
                schema: 3,
                check: "SELECT c.id, c.amount_cents, k.key, r.amount_cents FROM charges AS c \
                        LEFT JOIN idempotency_keys AS k ON k.charge_id = c.id \
                        LEFT JOIN refunds AS r ON r.charge_id = c.id LIMIT 1",
                traffic: &[
                    "INSERT INTO refunds (charge_id, amount_cents, created_at) VALUES \
                     (2, 11800, datetime('now', '-140 hours'));",
                ],
            }),
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
            data: Some(ReleaseData {
                schema: 3,
                check: "SELECT c.id, c.amount_cents, k.key, r.amount_cents FROM charges AS c \
                        LEFT JOIN idempotency_keys AS k ON k.charge_id = c.id \
                        LEFT JOIN refunds AS r ON r.charge_id = c.id LIMIT 1",
                traffic: &[
                    "INSERT INTO charges (amount_cents, card_token, processor_id, created_at) VALUES \
                     (85800, 'tok_visa_4242', 'pr_5007', datetime('now', '-2 hours'));",
                    "INSERT INTO idempotency_keys (key, charge_id, created_at) VALUES \
                     ('order-1007', last_insert_rowid(), datetime('now', '-2 hours'));",
                ],
            }),
        },
    ],
};

/// `inventory` keeps one file per item under `stock/`, with the count on
/// hand.
const INVENTORY: ServiceHistory = ServiceHistory {
    name: "inventory",
    store: Some(Store::Directory),
    migrations: &[],
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
            data: Some(ReleaseData {
                schema: 1,
                check: "stock",
                traffic: &["stock/desk-lamp=40", "stock/notebook=200"],
            }),
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
            data: Some(ReleaseData {
                schema: 1,
                check: "stock",
                traffic: &["stock/standing-desk=12", "stock/monitor-arm=30"],
            }),
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
            data: Some(ReleaseData {
                schema: 1,
                check: "stock",
                traffic: &["stock/desk-lamp=37", "stock/office-chair=18"],
            }),
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
            data: Some(ReleaseData {
                schema: 1,
                check: "stock",
                traffic: &["stock/cable-tray=60", "reservations/r-1007=standing-desk 2"],
            }),
        },
    ],
};
