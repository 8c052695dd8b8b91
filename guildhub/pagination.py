"""Admin pagination for tables too big to COUNT(*) on every page view."""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    """Counts exactly up to `exact_limit`; beyond it, PostgreSQL's planner estimate or "at least".

    A COUNT(*) over a million members reads a million rows per page view. The
    templates show `count_is_estimate` as "about N" and `count_is_at_least` as "N+".
    """

    exact_limit = 10_000
    count_is_estimate = False
    count_is_at_least = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list.order_by()
        if queryset.query.is_empty():  # .none(): nothing to count, and nothing to explain either
            return 0
        if connections[queryset.db].vendor == "postgresql":
            # The planner's guess, from the table's statistics (pg_class.reltuples for
            # the whole table): no rows are read. Small results are counted exactly.
            estimate = self._planner_estimate(queryset)
            if estimate > self.exact_limit:
                self.count_is_estimate = True
                return estimate
        # COUNT over a LIMIT: reads at most exact_limit + 1 rows.
        counted = queryset.values("pk")[: self.exact_limit + 1].count()
        if counted > self.exact_limit:
            self.count_is_at_least = True
            return self.exact_limit
        return counted

    @staticmethod
    def _planner_estimate(queryset) -> int:
        plan = json.loads(queryset.values("pk").explain(format="json"))
        return int(plan[0]["Plan"]["Plan Rows"])
