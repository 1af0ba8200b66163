//! The crash-point matrix as data: which points exist, which scenario reaches each one, the
//! interfering events, and the fixed sample `--quick` runs. A point that moves or disappears
//! with a change of the workflow is a line here; a row whose point is never reached fails its
//! cells as "not reached" rather than passing unnoticed.

/// How an order gets to its crash point, through the HTTP API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// S1: place with a coupon, pay: `COMPLETED`, delivered to the data platform.
    Happy,
    /// S2: place A with a coupon; another customer's B buys the last unit and pays; paying A
    /// then fails for stock: restore_stock, release_coupon, refund_points, close `CANCELED`.
    SoldOut,
    /// S3: place, then the user cancels: `close_order` as an ordinary activity.
    UserCancel,
    /// S4: place, pay nothing: the payment timer closes the order `EXPIRED`.
    Expiry,
    /// S5: place A; B of the same user spends the points; paying A is refused for points (the
    /// charge refused, its compensation run); top up and pay A again: `COMPLETED`.
    PointsShort,
}

impl Scenario {
    pub fn short(self) -> &'static str {
        match self {
            Scenario::Happy => "S1",
            Scenario::SoldOut => "S2",
            Scenario::UserCancel => "S3",
            Scenario::Expiry => "S4",
            Scenario::PointsShort => "S5",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Scenario::Happy => "happy path with a coupon: place, pay, COMPLETED, delivered",
            Scenario::SoldOut => {
                "payment refused for stock (another order bought the last unit), with a \
                 coupon: restore_stock, release_coupon, refund_points, close CANCELED"
            }
            Scenario::UserCancel => "the user cancels the PENDING order: close CANCELED",
            Scenario::Expiry => "no payment: the payment timer closes the order EXPIRED",
            Scenario::PointsShort => {
                "points short at payment (charge refused, refund_points run), top-up, pay \
                 again: COMPLETED"
            }
        }
    }
}

/// What else happens while the worker is down after its abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    None,
    /// A Temporal cancel request for the order's workflow (the Web UI's "Cancel").
    OperatorCancel,
    /// `POST /api/v1/orders/{id}/cancel`, its answer awaited in the background.
    UserCancel,
    /// A second `POST /api/v1/payments` under another key, in the background.
    SecondPay,
    /// The payment deadline passes (the cell runs with a short `PAYMENT_TIMEOUT`).
    Timer,
    /// The data-platform receiver stops listening before the restart, and comes back later.
    PlatformDown,
    /// An operator terminates the workflow (no compensation runs); `starter check` names the
    /// order, and `starter repair` (a dry run, `--apply`, `--apply` again) reconciles it.
    Terminate,
}

/// The matrix's columns, in order.
pub const EVENTS: [Event; 7] = [
    Event::None,
    Event::OperatorCancel,
    Event::UserCancel,
    Event::SecondPay,
    Event::Timer,
    Event::PlatformDown,
    Event::Terminate,
];

impl Event {
    pub fn label(self) -> &'static str {
        match self {
            Event::None => "none",
            Event::OperatorCancel => "operator cancel",
            Event::UserCancel => "user cancel",
            Event::SecondPay => "second pay",
            Event::Timer => "payment timer",
            Event::PlatformDown => "data platform down",
            Event::Terminate => "terminate + repair",
        }
    }
}

/// One row of the matrix: a crash point, reached by a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub point: &'static str,
    pub scenario: Scenario,
}

const fn row(point: &'static str, scenario: Scenario) -> Row {
    Row { point, scenario }
}

use Scenario::{Expiry, Happy, PointsShort, SoldOut, UserCancel};

/// Every point reached with `STEP_MODE=local` (the default), by the scenario that reaches it.
/// `.before_completion` exists only for local activities: charge_points, notify_platform and
/// a user's close_order are ordinary ones.
pub const ROWS: &[Row] = &[
    // Placement: one workflow task, one local activity (checks and the PENDING row).
    row("place_order.before", Happy),
    row("place_order.after", Happy),
    row("place_order.before_completion", Happy),
    // Payment: the charge is an ordinary activity, the rest local in the next task.
    row("charge_points.before", Happy),
    row("charge_points.after", Happy),
    row("redeem_coupon.before", Happy),
    row("redeem_coupon.after", Happy),
    row("redeem_coupon.before_completion", Happy),
    row("deduct_stock_and_complete.before", Happy),
    row("deduct_stock_and_complete.after", Happy),
    row("deduct_stock_and_complete.before_completion", Happy),
    // After COMPLETED: the data platform (ordinary activity).
    row("notify_platform.before", Happy),
    row("notify_platform.delivered", Happy),
    row("notify_platform.after", Happy),
    // The last step refused for stock (its refusal recorded), then the compensations.
    row("deduct_stock_and_complete.after", SoldOut),
    row("restore_stock.before", SoldOut),
    row("restore_stock.after", SoldOut),
    row("restore_stock.before_completion", SoldOut),
    row("release_coupon.before", SoldOut),
    row("release_coupon.after", SoldOut),
    row("release_coupon.before_completion", SoldOut),
    row("refund_points.before", SoldOut),
    row("refund_points.after", SoldOut),
    row("refund_points.before_completion", SoldOut),
    row("close_order.before", SoldOut),
    row("close_order.after", SoldOut),
    row("close_order.before_completion", SoldOut),
    // A user's cancel: close_order as an ordinary activity.
    row("close_order.before", UserCancel),
    row("close_order.after", UserCancel),
    // Expiry: close_order as a local activity after the timer.
    row("close_order.before", Expiry),
    row("close_order.after", Expiry),
    row("close_order.before_completion", Expiry),
    // A charge refused for points, and its compensation, on an order that stays PENDING.
    row("charge_points.after", PointsShort),
    row("refund_points.before_completion", PointsShort),
];

/// The fixed sample of `--quick` (what `make test` runs): the cells of defects 1 and 2, and a
/// few that cover the other kinds of step and event.
pub const QUICK: &[(&str, Scenario, Event)] = &[
    // Defect 1: the last step committed COMPLETED, its task lost, then an operator's cancel.
    (
        "deduct_stock_and_complete.before_completion",
        Happy,
        Event::OperatorCancel,
    ),
    // Defect 2: the order recorded PENDING, the placement's task lost, then a cancel.
    (
        "place_order.before_completion",
        Happy,
        Event::OperatorCancel,
    ),
    ("charge_points.after", Happy, Event::SecondPay),
    ("refund_points.before", SoldOut, Event::None),
    ("notify_platform.delivered", Happy, Event::PlatformDown),
    ("close_order.before_completion", Expiry, Event::UserCancel),
    // Terminated mid-payment (PAID, the coupon redeemed, unknown to the workflow): repaired
    // CANCELED; and past the pivot, not yet delivered: repaired forward.
    ("redeem_coupon.before_completion", Happy, Event::Terminate),
    ("notify_platform.before", Happy, Event::Terminate),
];

/// Steps whose points are reached while the order is placed. Their crash is armed before the
/// placement and names no order (its id is not known before the placement answers); every
/// other point is armed once the order is placed and names it, so that another order of the
/// scenario (S2's and S5's B) never fires it.
pub const PLACEMENT_STEPS: &[&str] = &["place_order"];

/// One cell: a row under one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub point: &'static str,
    pub scenario: Scenario,
    pub event: Event,
}

impl Cell {
    pub fn label(&self) -> String {
        format!(
            "{} × {} ({})",
            self.point,
            self.event.label(),
            self.scenario.short()
        )
    }

    /// Whether the point is reached while placing (see [`PLACEMENT_STEPS`]).
    pub fn in_placement(&self) -> bool {
        let step = self.point.split('.').next().unwrap_or_default();
        PLACEMENT_STEPS.contains(&step)
    }

    pub fn row(&self) -> Row {
        row(self.point, self.scenario)
    }
}

/// The cells to run: every row under every event, or the quick sample; `filter` keeps those
/// whose label contains it.
pub fn cells(quick: bool, filter: Option<&str>) -> Vec<Cell> {
    let all: Vec<Cell> = if quick {
        QUICK
            .iter()
            .map(|&(point, scenario, event)| Cell {
                point,
                scenario,
                event,
            })
            .collect()
    } else {
        ROWS.iter()
            .flat_map(|r| {
                EVENTS.iter().map(|&event| Cell {
                    point: r.point,
                    scenario: r.scenario,
                    event,
                })
            })
            .collect()
    };
    all.into_iter()
        .filter(|c| filter.is_none_or(|f| c.label().contains(f)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_sample_is_made_of_rows_of_the_matrix() {
        for &(point, scenario, _) in QUICK {
            assert!(
                ROWS.contains(&row(point, scenario)),
                "{point} ({}) is not a row",
                scenario.short()
            );
        }
    }

    #[test]
    fn rows_are_unique_and_placement_is_recognised() {
        for (i, r) in ROWS.iter().enumerate() {
            assert!(!ROWS[..i].contains(r), "{} twice", r.point);
        }
        let cell = |point| Cell {
            point,
            scenario: Happy,
            event: Event::None,
        };
        assert!(cell("place_order.after").in_placement());
        assert!(!cell("redeem_coupon.after").in_placement());
        assert_eq!(cells(false, None).len(), ROWS.len() * EVENTS.len());
        assert_eq!(cells(true, Some("place_order")).len(), 1);
    }
}
