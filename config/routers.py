"""Search reads on read replicas; writes, training and everything else on the primary.

Only code that runs inside `replica_reads()` reads from a replica (the search pages and
API, through config.middleware.ReplicaReadsMiddleware): workers, training and the admin
never see a replica's lag. Within it, a read goes to the primary once the same request
has written through the ORM or while the primary has a transaction open, so a request
always reads what it wrote. Each request sticks to one replica, chosen at random.
"""
import random
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections


@dataclass
class ReadPlan:
    replica: str
    wrote: bool = False


read_plan: ContextVar[ReadPlan | None] = ContextVar("read_plan", default=None)


@contextmanager
def replica_reads():
    """Let the reads inside go to one of GLIMPSE_READ_REPLICAS (a no-op without replicas)."""
    replicas = settings.GLIMPSE_READ_REPLICAS
    token = read_plan.set(ReadPlan(replica=random.choice(replicas)) if replicas else None)
    try:
        yield
    finally:
        read_plan.reset(token)


def read_database() -> str:
    """The alias a read should use now; raw SQL takes `connections[read_database()]`."""
    plan = read_plan.get()
    if plan is None or plan.wrote or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    return plan.replica


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        return read_database()

    def db_for_write(self, model, **hints):
        plan = read_plan.get()
        if plan is not None:
            plan.wrote = True
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        # Replicas hold the primary's rows: an object read from one relates to any other.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # Replicas follow the primary's schema through replication.
        return db == DEFAULT_DB_ALIAS
