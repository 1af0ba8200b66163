// The public API (CONTRACT §5), same origin, with the tab's token; its errors in words.

const TOKEN = 'shop.token';

export const token = {
  get: () => sessionStorage.getItem(TOKEN),
  set: (t) => sessionStorage.setItem(TOKEN, t),
  forget: () => sessionStorage.removeItem(TOKEN),
  /** The user id the token names (its `sub`), to keep each user's cart apart; not trusted. */
  subject() {
    const t = this.get();
    try {
      const payload = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return String(JSON.parse(atob(payload)).sub);
    } catch {
      return 'unknown';
    }
  },
};

/** A failed call: `status` 0 when the API could not be reached at all. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || (status === 0 ? 'NETWORK' : 'UNKNOWN');
    this.details = (body && body.details) || {};
    this.retryAfter = 0;
  }

  /** The API is down or busy: the same request may simply be sent again. */
  get retryable() {
    return this.status === 0 || this.status === 503 || this.status === 429;
  }
}

/** A fresh Idempotency-Key: one per thing the shopper means to do once. */
export function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`.replace('.', '');
}

let onUnauthenticated = () => {};
/** What to do when the API answers 401 (the token expired or was never good). */
export function whenSignedOut(f) {
  onUnauthenticated = f;
}

/** Whether the API takes `t` (the sign-in page's check; a 401 here only means "no"). */
export async function accepts(t) {
  try {
    await call('GET', '/me', undefined, undefined, t);
    return true;
  } catch (e) {
    if (e.status === 401) return false;
    throw e;
  }
}

export async function call(method, path, body, key, trying) {
  const headers = { Accept: 'application/json' };
  const t = trying || token.get();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (key) headers['Idempotency-Key'] = key;
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, null);
  }
  let json = null;
  try {
    json = await response.json();
  } catch {
    json = null;
  }
  if (response.ok) return json;
  const error = new ApiError(response.status, json);
  error.retryAfter = Number(response.headers.get('Retry-After') || 0);
  if (response.status === 401 && !trying) onUnauthenticated(error);
  throw error;
}

export const get = (path) => call('GET', path);
export const post = (path, body, key) => call('POST', path, body, key);

const COUPON_REASONS = {
  NOT_FOUND: 'This coupon does not exist.',
  NOT_OWNED: 'This coupon belongs to someone else.',
  ALREADY_USED: 'This coupon has already been used.',
  EXPIRED: 'This coupon has expired.',
  MIN_ORDER_AMOUNT: 'Your cart is below this coupon’s minimum order amount.',
};

export function couponReason(reason, coupon) {
  if (reason === 'MIN_ORDER_AMOUNT' && coupon && coupon.min_order_amount != null) {
    const min = new Intl.NumberFormat('en-US').format(coupon.min_order_amount);
    return `It needs an order of at least ${min} points.`;
  }
  return COUPON_REASONS[reason] || 'This coupon cannot be used.';
}

const FIELDS = {
  'shipping.recipient': 'The recipient’s name must be 1 to 100 characters.',
  'shipping.address': 'The address must be 1 to 300 characters.',
  'shipping.phone': 'The phone number must be 7 to 20 digits, spaces, “+” or “-”.',
  amount: 'The amount must be a whole number from 1 to 10,000,000.',
  items: 'An order has 1 to 50 different products.',
};

/** Any error of CONTRACT §5, in words a shopper understands. `names` maps product ids to names. */
export function describe(error, names = {}) {
  const d = error.details || {};
  const product = (id) => names[id] || `product #${id}`;
  const n = (v) => new Intl.NumberFormat('en-US').format(v);
  switch (error.code) {
    case 'NETWORK':
      return 'The shop cannot be reached right now. Check your connection; we will keep trying.';
    case 'UNAVAILABLE':
      return 'The shop is temporarily unavailable. Please try again in a moment; nothing was lost.';
    case 'RATE_LIMITED':
      return `Too many requests at once. Please wait ${error.retryAfter || 1} seconds and try again.`;
    case 'UNAUTHENTICATED':
      return 'Your sign-in is not valid or has expired. Please sign in again.';
    case 'FORBIDDEN':
      return 'This token is not a shopper’s: sign in with a customer token.';
    case 'INVALID_REQUEST': {
      const field = String(d.field || '');
      if (FIELDS[field]) return FIELDS[field];
      if (field.includes('quantity')) return 'Each quantity must be a whole number from 1 to 1,000.';
      if (field.includes('product_id')) return 'A product appears twice in your cart.';
      return 'Something in the form was not accepted. Please check it and try again.';
    }
    case 'PRODUCT_NOT_FOUND':
      return `${product(d.product_id)} is no longer sold. Remove it from your cart.`;
    case 'ORDER_NOT_FOUND':
      return 'We cannot find this order.';
    case 'INSUFFICIENT_STOCK':
      return d.available > 0
        ? `Only ${n(d.available)} of ${product(d.product_id)} left in stock.`
        : `${product(d.product_id)} is sold out.`;
    case 'ORDER_NOT_PAYABLE':
      if (d.reason === 'TOO_MANY_ATTEMPTS') {
        return 'This order has had too many payment attempts; it will expire. Please order again.';
      }
      if (d.status === 'EXPIRED') return 'The time to pay for this order has run out.';
      return `This order can no longer be paid or canceled: it is ${String(d.status || 'closed').toLowerCase()}.`;
    case 'IDEMPOTENCY_KEY_REUSED':
      return 'This request was already sent with different content. Please try again.';
    case 'PAYLOAD_TOO_LARGE':
      return 'That is too much text to send.';
    case 'COUPON_INVALID':
      return couponReason(d.reason);
    case 'INSUFFICIENT_POINTS':
      return `You have ${n(d.points)} points and this costs ${n(d.total)}: you need ${n(d.total - d.points)} more.`;
    default:
      return 'Something went wrong on our side. Please try again.';
  }
}
