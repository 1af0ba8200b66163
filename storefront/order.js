// One order: status, lines, totals and shipping; while PENDING a countdown to expires_at, Pay
// and Cancel; on INSUFFICIENT_POINTS the shortfall, a top-up and pay again; a cancellation's
// reason in plain words; a receipt once COMPLETED. It follows the order while the workflow
// works on it, so an expiry shows without a reload.
import { h, fill, pts, when, message } from './dom.js';
import { get, post, describe, newKey } from './api.js';
import { linesTable } from './checkout.js';
import { topUpForm } from './account.js';
import { flash } from './app.js';

export const STATUS_WORDS = {
  PENDING: 'Waiting for payment',
  PAID: 'Paid: finishing your order',
  COMPLETED: 'Completed',
  CANCELED: 'Canceled',
  EXPIRED: 'Expired',
};

const CANCEL_WORDS = {
  USER_CANCELED: 'You canceled this order.',
  OPERATOR_CANCELED: 'The shop canceled this order.',
  PAYMENT_EXPIRED: 'The time to pay ran out before the order was paid.',
  INSUFFICIENT_STOCK: 'A product in it sold out while the order was being paid.',
  COUPON_INVALID: 'Its coupon could no longer be used (another order had used it, or it had expired).',
  REPAIRED: 'The shop closed this order after a technical problem.',
};

const FOLLOW_MS = 1000;

function countdown(expiresAt) {
  const left = Math.max(0, Math.round((Date.parse(expiresAt) - Date.now()) / 1000));
  if (left === 0) return 'The time to pay is up; closing the order…';
  const m = Math.floor(left / 60);
  const s = String(left % 60).padStart(2, '0');
  return `Pay within ${m}:${s}`;
}

export async function order(view, el, id) {
  let shown = await get(`/orders/${id}`);
  const status = h('div', { id: 'order-status-msg', 'aria-live': 'polite' });
  const body = h('div');
  const clock = h('p', { id: 'countdown', class: 'countdown', 'aria-live': 'off' });
  let busy = false;
  // One key per payment the shopper means: kept while the shop cannot answer (a retry is the
  // same payment), new once a payment got its answer.
  let payKey = null;
  let offline = false;

  const draw = () => {
    const o = shown;
    // "Pay before the time runs out", carried from checkout, is over once the order is not PENDING.
    if (o.status !== 'PENDING') flash();
    fill(body,
      h('p', { class: 'status', id: 'order-status', dataset: { status: o.status } }, STATUS_WORDS[o.status] || o.status),
      o.status === 'PENDING' ? [clock, actions()] : null,
      o.status === 'CANCELED' || o.status === 'EXPIRED'
        ? h('section', { id: 'why', class: 'closed' },
          h('p', {}, CANCEL_WORDS[o.cancel_code] || 'This order was closed.'),
          h('p', {}, o.coupon_id !== null
            ? 'Nothing was charged: any points taken were refunded, and the coupon is yours to use again.'
            : 'Nothing was charged: any points taken were refunded.'))
        : null,
      o.status === 'COMPLETED' ? receipt(o) : null,
      h('h2', {}, 'Items'), linesTable(o.items),
      h('dl', { class: 'totals' },
        h('dt', {}, 'Subtotal'), h('dd', {}, pts(o.subtotal)),
        h('dt', {}, 'Discount'), h('dd', {}, o.discount ? `− ${pts(o.discount)}` : 'none'),
        h('dt', {}, 'Total'), h('dd', { id: 'order-total' }, pts(o.total))),
      h('h2', {}, 'Shipping to'),
      h('address', { id: 'shipping-to' }, h('span', {}, o.shipping.recipient), h('br'),
        h('span', {}, o.shipping.address), h('br'), h('span', {}, o.shipping.phone)),
      h('p', { class: 'meta' }, `Placed ${when(o.created_at)}`));
    clock.textContent = countdown(o.expires_at);
  };

  const actions = () => {
    const pay = h('button', { type: 'button', id: 'pay', disabled: busy, onclick: () => act('pay') }, 'Pay');
    const cancel = h('button', { type: 'button', id: 'cancel', class: 'secondary', disabled: busy, onclick: () => act('cancel') }, 'Cancel order');
    return h('p', { class: 'actions' }, pay, ' ', cancel);
  };

  const act = async (what) => {
    busy = true;
    draw();
    fill(status, message('info', what === 'pay' ? 'Paying…' : 'Canceling…'));
    try {
      if (what === 'pay') {
        payKey = payKey || newKey();
        shown = await post('/payments', { order_id: id }, payKey);
        payKey = null;
        fill(status, message('ok', 'Paid. Thank you!'));
      } else {
        shown = await post(`/orders/${id}/cancel`, {});
        fill(status, message('ok', 'Your order is canceled.'));
      }
    } catch (e) {
      if (!e.retryable) payKey = null;
      fill(status, message('error', describe(e)));
      if (e.code === 'INSUFFICIENT_POINTS') {
        const short = e.details.total - e.details.points;
        status.append(h('section', { id: 'shortfall' },
          h('h2', {}, 'Top up and pay again'),
          topUpForm(short, () => fill(status, message('ok', 'Points added. You can pay again now.')))));
      }
      // A refused payment may have closed the order (sold out meanwhile, say): read it again.
      if (!e.retryable && e.status !== 401) shown = await get(`/orders/${id}`).catch(() => shown);
    } finally {
      busy = false;
      draw();
    }
  };

  fill(el, h('h1', {}, 'Order ', h('code', {}, id)), status, body);
  draw();
  // Follow the order while the workflow may still change it.
  view.every(FOLLOW_MS, async () => {
    if (shown.status === 'PENDING') clock.textContent = countdown(shown.expires_at);
    if (busy || !['PENDING', 'PAID'].includes(shown.status)) return;
    try {
      const fresh = await get(`/orders/${id}`);
      if (offline) fill(status);
      offline = false;
      if (fresh.status !== shown.status && !busy && view.live) {
        shown = fresh;
        draw();
      }
    } catch (e) {
      if (e.retryable && view.live) {
        offline = true;
        fill(status, message('error', describe(e)));
      }
    }
  });
}

function receipt(o) {
  return h('section', { id: 'receipt', class: 'receipt', 'aria-labelledby': 'receipt-h' },
    h('h2', { id: 'receipt-h' }, 'Receipt'),
    h('dl', {},
      h('dt', {}, 'Order'), h('dd', {}, o.id),
      h('dt', {}, 'Paid'), h('dd', {}, when(o.paid_at)),
      h('dt', {}, 'Completed'), h('dd', {}, when(o.completed_at)),
      h('dt', {}, 'Charged'), h('dd', { id: 'charged' }, pts(o.total)),
      o.discount ? [h('dt', {}, 'Coupon discount'), h('dd', {}, pts(o.discount))] : null));
}
