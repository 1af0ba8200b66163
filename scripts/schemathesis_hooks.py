"""schemathesis hooks (schemathesis.toml `hooks`): the rules of CONTRACT §5 that JSON Schema
cannot state, applied to the requests schemathesis generates as valid. Nothing here touches a
check or an answer: a generated request that breaks such a rule is not sent as a valid one.

- An order's lines name no product twice. The document says `uniqueItems` (no two equal lines),
  but two lines of one product with different quantities are equal only in their product.
- A coupon's owner must exist: valid coupons are generated for the demo seed's users (1 to 3).
"""

import schemathesis
from schemathesis.generation import GenerationMode

SEEDED_USERS = {1, 2, 3}


def _valid_mode(case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode == GenerationMode.POSITIVE


def _repeats_a_product(body) -> bool:
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return False
    ids = [line.get("product_id") for line in items if isinstance(line, dict)]
    hashable = [i for i in ids if isinstance(i, (int, float, str))]
    return len(hashable) != len(set(hashable))


@schemathesis.hook
def filter_case(context, case) -> bool:
    if not _valid_mode(case):
        return True
    body = case.body
    if _repeats_a_product(body):
        return False
    if case.operation.path == "/api/v1/admin/coupons" and isinstance(body, dict):
        return body.get("user_id") in SEEDED_USERS
    return True
