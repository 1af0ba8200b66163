// My orders (newest first, with status) and my account (points, top-up, coupons).
import { h, fill, pts, num, when, field, message } from './dom.js';
import { get, post, describe, newKey } from './api.js';
import { STATUS_WORDS } from './order.js';

export function discountText(d) {
  if (d.type === 'FIXED') return `${num(d.amount)} points off`;
  const cap = d.max_amount != null ? ` (at most ${num(d.max_amount)} points)` : '';
  return `${d.percent}% off${cap}`;
}

/** A top-up form (1 to 10,000,000 points), `suggested` filled in; `then(user)` after it. */
export function topUpForm(suggested, then) {
  const amount = h('input', { type: 'number', name: 'amount', min: 1, max: 10000000, inputmode: 'numeric', value: suggested || '' });
  const status = h('div', { 'aria-live': 'polite' });
  const button = h('button', { type: 'submit' }, 'Top up');
  const form = h('form', { class: 'top-up', novalidate: true },
    field('Points to add', amount, 'A whole number from 1 to 10,000,000.'), button, status);
  let sent = { amount: null, key: null };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const s = amount.value.trim();
    const n = Number(s);
    if (!/^\d+$/.test(s) || n < 1 || n > 10000000) {
      fill(status, message('error', 'The amount must be a whole number from 1 to 10,000,000.'));
      return;
    }
    // The same top-up repeated after the shop could not answer is added once.
    if (sent.amount !== n) sent = { amount: n, key: newKey() };
    button.disabled = true;
    try {
      const me = await post('/me/points/charge', { amount: n }, sent.key);
      sent = { amount: null, key: null };
      fill(status, message('ok', `Added ${pts(n)}. You now have ${pts(me.points)}.`));
      await then(me);
    } catch (e) {
      fill(status, message('error', describe(e)));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

export async function orders(view, el) {
  const list = await get('/orders');
  if (!list.length) {
    fill(el, h('h1', {}, 'My orders'), h('p', {}, 'No orders yet. ', h('a', { href: '#/' }, 'See the catalogue')));
    return;
  }
  fill(el, h('h1', {}, 'My orders'),
    h('div', { class: 'scroll' }, h('table', { class: 'orders' },
      h('thead', {}, h('tr', {}, ...['Order', 'Placed', 'Status', 'Total'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, list.map((o) => h('tr', { dataset: { orderId: o.id, status: o.status } },
        h('th', { scope: 'row' }, h('a', { href: `#/orders/${o.id}` }, o.id)),
        h('td', {}, when(o.created_at)),
        h('td', {}, STATUS_WORDS[o.status] || o.status),
        h('td', {}, pts(o.total))))))));
}

export async function account(view, el) {
  const [me, coupons] = await Promise.all([get('/me'), get('/me/coupons')]);
  const balance = h('p', { id: 'balance' }, 'Points: ', h('strong', { id: 'my-points' }, num(me.points)));
  const items = coupons.map((c) => {
    const expired = Date.parse(c.expires_at) <= Date.now();
    const state = c.status === 'USED' ? `Used${c.order_id ? ` by order ${c.order_id}` : ''}` : expired ? 'Expired' : 'Available';
    return h('li', { class: 'coupon', dataset: { couponId: c.id, status: c.status } },
      h('strong', {}, discountText(c.discount)),
      h('span', { class: 'coupon-state' }, ` · ${state}`),
      h('br'),
      h('small', {}, c.min_order_amount != null ? `On orders of ${pts(c.min_order_amount)} or more. ` : '',
        `Valid until ${when(c.expires_at)}.`));
  });
  fill(el, h('h1', {}, 'My account'),
    h('p', {}, `Signed in as ${me.name}.`), balance,
    h('h2', {}, 'Top up'),
    topUpForm('', (fresh) => { document.getElementById('my-points').textContent = num(fresh.points); }),
    h('h2', {}, 'My coupons'),
    items.length ? h('ul', { class: 'coupons', id: 'my-coupons' }, items) : h('p', {}, 'You have no coupons.'));
}
