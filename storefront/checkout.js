// Checkout: the cart priced by the API's quote, the user's coupons usable or not for this cart
// (with the reason, or the discount), the points against the total, and the shipping form
// with its rules shown before it is sent.
import { h, fill, pts, field, message } from './dom.js';
import { get, post, describe, couponReason, newKey } from './api.js';
import * as cart from './cart.js';
import { go, flashNext } from './app.js';
import { topUpForm, discountText } from './account.js';

/** Each coupon priced for this cart: {coupon, quote} when usable, {coupon, reason} when not. */
async function priceCoupons(items, coupons) {
  return Promise.all(
    coupons.map(async (coupon) => {
      try {
        return { coupon, quote: await post('/orders/quote', { items, coupon_id: coupon.id }) };
      } catch (e) {
        if (e.code !== 'COUPON_INVALID') throw e;
        return { coupon, reason: couponReason(e.details.reason, coupon) };
      }
    }),
  );
}

export async function checkout(view, el) {
  const items = cart.items();
  if (!items.length) {
    fill(el, h('h1', {}, 'Checkout'), h('p', {}, 'Your cart is empty. ', h('a', { href: '#/' }, 'See the catalogue')));
    return;
  }
  const names = Object.fromEntries(cart.lines().map((l) => [l.product_id, l.name]));
  let plain;
  try {
    plain = await post('/orders/quote', { items });
  } catch (e) {
    if (e.retryable || e.status === 401) throw e;
    fill(el, h('h1', {}, 'Checkout'), message('error', describe(e, names)),
      h('p', {}, h('a', { href: '#/cart' }, 'Back to your cart')));
    return;
  }
  const coupons = await get('/me/coupons');
  const priced = await priceCoupons(items, coupons);
  let chosen = { coupon: null, quote: plain };

  const summary = h('section', { id: 'summary', 'aria-labelledby': 'summary-h' });
  const showSummary = () => {
    const q = chosen.quote;
    const short = q.total - q.points;
    fill(summary,
      h('h2', { id: 'summary-h' }, 'Total'),
      h('dl', { class: 'totals' },
        h('dt', {}, 'Subtotal'), h('dd', { id: 'subtotal' }, pts(q.subtotal)),
        h('dt', {}, 'Discount'), h('dd', { id: 'discount' }, q.discount ? `− ${pts(q.discount)}` : 'none'),
        h('dt', {}, 'Total'), h('dd', { id: 'total' }, pts(q.total)),
        h('dt', {}, 'Your points'), h('dd', { id: 'points' }, pts(q.points))),
      short > 0
        ? [message('error', `Your points do not cover this total: you need ${pts(short)} more. Top up first; an order is placed only when your points cover it.`),
          topUpForm(short, async () => { chosen.quote = await post('/orders/quote', { items, coupon_id: chosen.coupon ?? undefined }); showSummary(); })]
        : message('ok', 'Your points cover this total. You pay on the next page.'));
  };

  const couponList = h('fieldset', { id: 'coupons' }, h('legend', {}, 'Coupon'));
  const radio = (value, usable, label, extra) => {
    const input = h('input', { type: 'radio', name: 'coupon', value, disabled: !usable, checked: value === '' });
    input.addEventListener('change', () => {
      const found = priced.find((p) => String(p.coupon.id) === value);
      chosen = found ? { coupon: found.coupon.id, quote: found.quote } : { coupon: null, quote: plain };
      showSummary();
    });
    return h('div', { class: `coupon ${usable ? 'usable' : 'unusable'}`, dataset: { couponId: value } },
      h('label', {}, input, ' ', label), extra ? h('small', { class: 'why' }, extra) : null);
  };
  couponList.append(radio('', true, 'No coupon'));
  for (const p of priced) {
    const text = discountText(p.coupon.discount);
    couponList.append(p.quote
      ? radio(String(p.coupon.id), true, `${text}: saves ${pts(p.quote.discount)}`, null)
      : radio(String(p.coupon.id), false, `${text}: not usable for this cart`, p.reason));
  }
  if (!priced.length) couponList.append(h('p', {}, 'You have no coupons.'));

  fill(el, h('h1', {}, 'Checkout'), linesTable(plain.items), couponList, summary, shippingForm(() => chosen, items, names));
  showSummary();
}

export function linesTable(lines) {
  return h('div', { class: 'scroll' }, h('table', { class: 'lines' },
    h('thead', {}, h('tr', {}, ...['Product', 'Price', 'Quantity', 'Line total'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, lines.map((l) => h('tr', { dataset: { productId: l.product_id } },
      h('th', { scope: 'row' }, l.name), h('td', {}, pts(l.unit_price)), h('td', {}, String(l.quantity)),
      h('td', {}, pts(l.line_total)))))));
}

/** The rules of CONTRACT §5 for the shipping fields, checked before sending. */
function shippingProblem(s) {
  const len = (v) => [...v].length;
  if (len(s.recipient) < 1 || len(s.recipient) > 100) return 'The recipient’s name must be 1 to 100 characters.';
  if (len(s.address) < 1 || len(s.address) > 300) return 'The address must be 1 to 300 characters.';
  if (!/^[0-9 +-]{7,20}$/.test(s.phone)) return 'The phone number must be 7 to 20 digits, spaces, “+” or “-”.';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(s.recipient + s.address)) return 'The name and address cannot contain line breaks or control characters.';
  return null;
}

function shippingForm(choice, items, names) {
  const recipient = h('input', { name: 'recipient', maxlength: 100, autocomplete: 'name', required: true });
  const address = h('input', { name: 'address', maxlength: 300, autocomplete: 'street-address', required: true });
  const phone = h('input', { name: 'phone', type: 'tel', maxlength: 20, inputmode: 'tel', autocomplete: 'tel', required: true });
  const status = h('div', { 'aria-live': 'polite' });
  const button = h('button', { type: 'submit', id: 'place' }, 'Place order');
  const form = h('form', { id: 'shipping', novalidate: true },
    h('h2', {}, 'Shipping'),
    field('Recipient', recipient, '1 to 100 characters.'),
    field('Address', address, '1 to 300 characters, on one line.'),
    field('Phone', phone, '7 to 20 of digits, spaces, “+” and “-”.'),
    button, status);
  // One key per distinct request: repeating it after a failure to reach the shop places the
  // order once; changing the coupon or the address is another request.
  let sent = { body: null, key: null };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const shipping = { recipient: recipient.value, address: address.value, phone: phone.value };
    const problem = shippingProblem(shipping);
    if (problem) {
      fill(status, message('error', problem));
      return;
    }
    const body = { items, shipping };
    const { coupon } = choice();
    if (coupon !== null) body.coupon_id = coupon;
    const text = JSON.stringify(body);
    if (sent.body !== text) sent = { body: text, key: newKey() };
    button.disabled = true;
    fill(status, message('info', 'Placing your order…'));
    try {
      const order = await post('/orders', body, sent.key);
      cart.clear();
      flashNext('ok', 'Your order is placed. Pay for it before the time runs out.');
      go(`#/orders/${order.id}`);
    } catch (e) {
      fill(status, message('error', describe(e, names)));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
