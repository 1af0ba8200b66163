// The shop's pages (CONTRACT §7): routing by URL fragment, sign-in, the catalogue and the cart.
// The other pages are in checkout.js, order.js and account.js.
import { h, fill, pts, num, field, message } from './dom.js';
import { token, get, accepts, describe, whenSignedOut } from './api.js';
import * as cart from './cart.js';
import { checkout } from './checkout.js';
import { order } from './order.js';
import { orders, account } from './account.js';

// A sign-in link (`/#token=…`): keep the token in this tab only, and take it out of the
// address bar (and so out of the history) before anything else happens. It lands on the
// catalogue. Opened on a page already open, it arrives as a change of fragment.
function takeLinkToken() {
  const link = location.hash.match(/^#token=(.+)$/);
  if (link) {
    token.set(decodeURIComponent(link[1]));
    history.replaceState(null, '', `${location.pathname}#/`);
  }
}
takeLinkToken();

const main = document.getElementById('main');
const notice = document.getElementById('notice');

/** One page on screen: its timers stop when another page replaces it. */
export class View {
  constructor() {
    this.timers = [];
    this.live = true;
  }

  every(ms, f) {
    this.timers.push(setInterval(() => this.live && f(), ms));
  }

  after(ms, f) {
    this.timers.push(setTimeout(() => this.live && f(), ms));
  }

  close() {
    this.live = false;
    this.timers.forEach((t) => {
      clearInterval(t);
      clearTimeout(t);
    });
  }
}

let current = new View();

/** Shows a message above the page until the next page. */
export function flash(kind, text) {
  fill(notice, text ? message(kind, text) : null);
}

let carried = [];
/** Shows a message above the next page. */
export function flashNext(kind, text) {
  carried = [kind, text];
}

export function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

whenSignedOut(() => {
  token.forget();
  flashNext('error', 'Your sign-in is not valid or has expired. Please sign in again.');
  go('#/signin');
});

const routes = [
  [/^#?\/?$/, catalogue],
  [/^#\/cart$/, cartPage],
  [/^#\/checkout$/, checkout],
  [/^#\/orders$/, orders],
  [/^#\/orders\/([A-Za-z0-9_-]{1,64})$/, order],
  [/^#\/account$/, account],
  [/^#\/signin$/, signIn],
];

async function render() {
  takeLinkToken();
  current.close();
  const view = new View();
  current = view;
  flash(...carried);
  carried = [];
  const signedIn = Boolean(token.get());
  document.getElementById('nav').hidden = !signedIn;
  updateCartCount();
  let page = signIn;
  let args = [];
  if (signedIn) {
    const found = routes.find(([re]) => re.test(location.hash));
    if (found) {
      page = found[1];
      args = location.hash.match(found[0]).slice(1);
    } else {
      page = notFound;
    }
  }
  fill(main, h('p', { class: 'loading' }, 'Loading…'));
  await load(view, () => page(view, main, ...args));
}

/**
 * Runs a page's loading; if the API cannot answer (down, 503, busy), says so and tries again
 * by itself every few seconds (and on the shopper's click) until it answers.
 */
export async function load(view, show) {
  try {
    await show();
  } catch (e) {
    if (!view.live || e.status === 401) return;
    const retry = () => view.live && load(view, show);
    if (e.retryable) {
      fill(
        main,
        message('error', describe(e)),
        h('p', {}, h('button', { type: 'button', id: 'retry', onclick: retry }, 'Try again now')),
      );
      view.after(Math.max(3, e.retryAfter || 0) * 1000, retry);
    } else {
      fill(main, message('error', describe(e)));
    }
  }
}

function updateCartCount() {
  const n = cart.count();
  document.getElementById('nav-cart').textContent = n ? `Cart (${n})` : 'Cart';
}
document.addEventListener('cart-changed', updateCartCount);

document.getElementById('sign-out').addEventListener('click', () => {
  token.forget();
  flashNext('ok', 'You are signed out. This tab has forgotten your token.');
  go('#/signin');
});

window.addEventListener('hashchange', render);
render();

// ---- pages ----

function notFound(view, el) {
  fill(el, h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '#/' }, 'Back to the catalogue')));
}

function signIn(view, el) {
  const input = h('textarea', { name: 'token', rows: 4, required: true, autocomplete: 'off', spellcheck: 'false' });
  const status = h('div', { 'aria-live': 'polite' });
  const form = h(
    'form',
    { id: 'sign-in', novalidate: true },
    field('Your access token', input, 'Paste the token the shop gave you, or open your sign-in link.'),
    h('button', { type: 'submit' }, 'Sign in'),
    status,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (!t) {
      fill(status, message('error', 'Please paste your token.'));
      return;
    }
    try {
      if (await accepts(t)) {
        token.set(t);
        go('#/');
      } else {
        fill(status, message('error', 'This token was not accepted. Check that you pasted all of it, or ask for a new sign-in link.'));
      }
    } catch (e) {
      fill(status, message('error', describe(e)));
    }
  });
  fill(el, h('h1', {}, 'Sign in'), form);
  if (!location.hash.startsWith('#/signin')) history.replaceState(null, '', `${location.pathname}#/signin`);
}

async function catalogue(view, el) {
  const products = await get('/products');
  const status = h('div', { id: 'cart-status', 'aria-live': 'polite' });
  const list = h('ul', { class: 'products' });
  for (const p of products) {
    const soldOut = p.stock <= 0;
    const qty = h('input', {
      type: 'number', name: 'quantity', min: 1, max: Math.max(1, Math.min(p.stock, cart.MAX_QUANTITY)),
      value: 1, inputmode: 'numeric', disabled: soldOut,
    });
    const form = h(
      'form',
      { class: 'add', novalidate: true },
      field('Quantity', qty),
      h('button', { type: 'submit', disabled: soldOut }, soldOut ? 'Sold out' : 'Add to cart'),
    );
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const n = cart.quantity(qty.value);
      if (n === null) {
        fill(status, message('error', 'The quantity must be a whole number from 1 to 1,000.'));
        return;
      }
      const refused = cart.add(p, n);
      fill(status, refused ? message('error', refused) : message('ok', `Added ${n} × ${p.name} to your cart.`));
    });
    list.append(
      h(
        'li',
        { class: `product${soldOut ? ' sold-out' : ''}`, dataset: { productId: p.id } },
        h('h2', {}, p.name),
        h('p', { class: 'price' }, pts(p.price)),
        h('p', { class: 'stock' }, soldOut ? 'Sold out' : `${num(p.stock)} in stock`),
        form,
      ),
    );
  }
  fill(el, h('h1', {}, 'Catalogue'), status, products.length ? list : h('p', {}, 'Nothing for sale yet.'));
}

function cartPage(view, el) {
  const lines = cart.lines();
  if (!lines.length) {
    fill(el, h('h1', {}, 'Your cart'), h('p', {}, 'Your cart is empty. ', h('a', { href: '#/' }, 'See the catalogue')));
    return;
  }
  const status = h('div', { 'aria-live': 'polite' });
  const rows = lines.map((l) => {
    const qty = h('input', {
      type: 'number', min: 1, max: cart.MAX_QUANTITY, value: l.quantity, inputmode: 'numeric',
      'aria-label': `Quantity of ${l.name}`, name: 'quantity',
    });
    qty.addEventListener('change', () => {
      const n = cart.quantity(qty.value);
      if (n === null) {
        fill(status, message('error', 'Each quantity must be a whole number from 1 to 1,000.'));
        qty.value = l.quantity;
        return;
      }
      cart.setQuantity(l.product_id, n);
      cartPage(view, el);
    });
    const removeButton = h('button', { type: 'button', class: 'link', onclick: () => { cart.remove(l.product_id); cartPage(view, el); } }, 'Remove');
    return h('tr', { dataset: { productId: l.product_id } },
      h('th', { scope: 'row' }, l.name), h('td', {}, pts(l.price)), h('td', {}, qty),
      h('td', {}, pts(l.price * l.quantity)), h('td', {}, removeButton));
  });
  const subtotal = lines.reduce((s, l) => s + l.price * l.quantity, 0);
  fill(
    el,
    h('h1', {}, 'Your cart'),
    status,
    h('div', { class: 'scroll' }, h('table', { class: 'lines' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Product'), h('th', { scope: 'col' }, 'Price'),
        h('th', { scope: 'col' }, 'Quantity'), h('th', { scope: 'col' }, 'Line total'), h('td', {}))),
      h('tbody', {}, rows))),
    h('p', {}, `Subtotal at the prices you saw: ${pts(subtotal)}. Checkout prices it again.`),
    h('p', {}, h('a', { href: '#/checkout', class: 'button', id: 'to-checkout' }, 'Checkout')),
  );
}
