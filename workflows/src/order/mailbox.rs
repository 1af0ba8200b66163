//! The callers' side of an order: what the `place`, `pay` and `cancel` updates asked, and the
//! answers they wait for. The workflow's life takes one request at a time from here and leaves
//! the answer; the update handlers only ask and wait.

use std::collections::BTreeMap;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use domain::saga::PayRequest;
use domain::{CancelCode, MAX_PAYMENT_ATTEMPTS, Order, OrderError, OrderId, OrderStatus};

/// What an update is answered.
pub type Answer = Result<Order, OrderError>;

/// A request the life of the order has to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Pay(PayRequest),
    Cancel,
}

#[derive(Debug, Default)]
pub struct Mailbox {
    /// The answer to `place`, once the placement is decided.
    pub placement: Option<Answer>,
    /// The request being acted on (one at a time), until it is answered.
    pub running: Option<Request>,
    /// `pay` updates accepted so far (CONTRACT §2 bounds them).
    pub payments: u32,
    /// Each payment's answer, by payment id.
    pub paid: BTreeMap<String, Answer>,
    pub canceled: Option<Answer>,
    /// The refusal that ended the running payment, for its caller.
    pub refusal: Option<OrderError>,
}

impl Mailbox {
    /// Whether a `pay` (or a `cancel`, `pay` false) may be accepted now, for the order as the
    /// workflow has it (`None`: not placed yet, or rejected). While the order is being placed the request is
    /// accepted and waits for the placement; its handler asks again once it is decided.
    pub fn admits(
        &self,
        order_id: &OrderId,
        order: Option<&Order>,
        now: Option<SystemTime>,
        pay: bool,
    ) -> Result<(), OrderError> {
        let Some(order) = order else {
            return match &self.placement {
                // Rejected: there is no such order.
                Some(_) => Err(OrderError::OrderNotFound {
                    order_id: order_id.to_string(),
                }),
                None => Ok(()),
            };
        };
        if order.status != OrderStatus::Pending {
            return Err(OrderError::not_payable(order.status));
        }
        if let Some(running) = &self.running {
            // Report where the order is heading, as one of the contract's statuses (a payment
            // in flight is `PAID`: points being charged, stock and coupon being settled).
            return Err(OrderError::not_payable(match running {
                Request::Pay(_) => OrderStatus::Paid,
                Request::Cancel => OrderStatus::Canceled,
            }));
        }
        if pay {
            // Judged by workflow time, the clock the expiry timer runs on.
            let now = now.map(DateTime::<Utc>::from);
            if now.is_some_and(|now| now >= order.expires_at) {
                return Err(OrderError::not_payable(OrderStatus::Expired));
            }
            if self.payments >= MAX_PAYMENT_ATTEMPTS {
                return Err(OrderError::TooManyAttempts);
            }
        }
        Ok(())
    }

    /// Accepts a request that [`Mailbox::admits`] let through.
    pub fn accept(&mut self, request: Request) {
        if let Request::Pay(_) = request {
            self.payments += 1;
        }
        self.running = Some(request);
    }

    /// Answers the running payment, and frees the mailbox for the next request.
    pub fn answer_payment(&mut self, answer: Answer) {
        if let Some(Request::Pay(p)) = self.running.take() {
            self.paid.insert(p.payment_id, answer);
        }
    }

    /// Once the order has ended, answers whoever still waits, as the order ended: a payment
    /// with the order if it completed (else its refusal, or the status), a cancellation with the
    /// order if the customer's cancellation closed it (else the status).
    pub fn settle(&mut self, order: &Order) {
        let not_payable = || Err(OrderError::not_payable(order.status));
        match self.running.take() {
            Some(Request::Pay(p)) => {
                let answer = match (order.status, self.refusal.take()) {
                    (OrderStatus::Completed, _) => Ok(order.clone()),
                    (_, Some(refusal)) => Err(refusal),
                    _ => not_payable(),
                };
                self.paid.insert(p.payment_id, answer);
            }
            Some(Request::Cancel) => {
                self.canceled = Some(if order.cancel_code == Some(CancelCode::UserCanceled) {
                    Ok(order.clone())
                } else {
                    not_payable()
                });
            }
            None => {}
        }
    }
}
