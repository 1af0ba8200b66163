// The cart: kept in this browser (localStorage, one per signed-in user) across reloads.
import { token } from './api.js';

export const MAX_LINES = 50;
export const MAX_QUANTITY = 1000;

const keyOf = () => `shop.cart.${token.subject()}`;

export function lines() {
  try {
    const saved = JSON.parse(localStorage.getItem(keyOf()) || '[]');
    return Array.isArray(saved) ? saved : [];
  } catch {
    return [];
  }
}

function save(list) {
  localStorage.setItem(keyOf(), JSON.stringify(list));
  document.dispatchEvent(new CustomEvent('cart-changed'));
}

export const count = () => lines().reduce((n, l) => n + l.quantity, 0);

/** A quantity the input rules accept (a whole number from 1 to 1000), or null. */
export function quantity(value) {
  const s = String(value).trim();
  if (!/^\d+$/.test(s)) return null;
  const n = Number(s);
  return n >= 1 && n <= MAX_QUANTITY ? n : null;
}

/** Adds `qty` of a product; an error message when the rules refuse it, else null. */
export function add(product, qty) {
  const list = lines();
  const line = list.find((l) => l.product_id === product.id);
  if (line) {
    if (line.quantity + qty > MAX_QUANTITY) {
      return `At most ${MAX_QUANTITY} of one product per order.`;
    }
    line.quantity += qty;
    line.name = product.name;
    line.price = product.price;
  } else {
    if (list.length >= MAX_LINES) return `An order has at most ${MAX_LINES} different products.`;
    list.push({ product_id: product.id, name: product.name, price: product.price, quantity: qty });
  }
  save(list);
  return null;
}

export function setQuantity(productId, qty) {
  const list = lines();
  const line = list.find((l) => l.product_id === productId);
  if (line) line.quantity = qty;
  save(list);
}

export function remove(productId) {
  save(lines().filter((l) => l.product_id !== productId));
}

export function clear() {
  save([]);
}

/** The lines as the API takes them. */
export const items = () => lines().map((l) => ({ product_id: l.product_id, quantity: l.quantity }));
