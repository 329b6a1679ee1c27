"""Every actor's inbox: what it accepts is listed in one place and handled, and nothing else gets in."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import threading
import typing
from typing import Any

import pytest

import nancemakina.actors as package
from nancemakina.actors import messages
from nancemakina.actors.runtime.actor import Actor, Barrier, handler_name
from nancemakina.actors.runtime.supervisor import Supervisor
from nancemakina.actors.tree.executor.order_executor import OrderExecutor
from nancemakina.actors.tree.ledger.position_ledger import PositionLedger
from nancemakina.actors.tree.market.market_stream import MarketStream
from nancemakina.actors.tree.pair_timeframe import PairTimeframe


def _all_actor_classes() -> list[type[Actor[Any]]]:
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        importlib.import_module(info.name)
    found: list[type[Actor[Any]]] = []
    todo: list[type[Any]] = [Actor]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith(package.__name__):
                found.append(sub)
    return found


def _listed_messages() -> set[type]:
    """The message types ``actors/messages.py`` names (defined there or re-exported by it)."""
    return {getattr(messages, n) for n in messages.__all__ if isinstance(getattr(messages, n), type)}


def test_the_five_actors_of_the_tree_declare_the_inboxes_listed_in_messages() -> None:
    declared = {
        PairTimeframe: messages.PairTimeframeInbox,
        OrderExecutor: messages.OrderExecutorInbox,
        PositionLedger: messages.PositionLedgerInbox,
        MarketStream: messages.MarketStreamInbox,
        Supervisor: messages.SupervisorInbox,
    }
    for actor, inbox in declared.items():
        assert set(actor.accepts) == {*typing.get_args(inbox), Barrier}, actor.__name__


def test_every_actor_accepts_only_messages_listed_in_one_place() -> None:
    listed = _listed_messages() | set(typing.get_args(messages.UserEvent)) | {messages.Decision}
    strays = {
        f"{cls.__name__}: {t.__name__}"
        for cls in _all_actor_classes()
        for t in cls.accepts
        if t not in listed
    }
    assert strays == set()
    assert len(_all_actor_classes()) >= 6  # the five of the tree, the group supervisor, the tree's root


def test_every_accepted_message_has_its_handler_and_every_handler_its_message() -> None:
    for cls in _all_actor_classes():
        for message_type in cls.accepts:
            assert callable(getattr(cls, handler_name(message_type), None)), (cls, message_type)
        handled = {handler_name(t) for t in cls.accepts}
        lifecycle = {"on_start", "on_stop", "on_failure", "on_receive"}
        assert {n for n in dir(cls) if n.startswith("on_")} - lifecycle <= handled, cls


def test_an_actor_that_cannot_handle_its_inbox_is_refused_when_defined() -> None:
    @dataclasses.dataclass(frozen=True)
    class Unheard:
        pass

    with pytest.raises(TypeError, match="accepts Unheard but has no handler"):

        class Deaf(Actor[Unheard]):
            pass

    with pytest.raises(TypeError, match="on_nothing handle no message"):

        class Stray(Actor[Unheard]):
            def on_unheard(self, _m: Unheard) -> None: ...
            def on_nothing(self, _m: object) -> None: ...


def test_a_message_outside_the_inbox_is_dropped_and_the_actor_lives_on() -> None:
    @dataclasses.dataclass(frozen=True)
    class Known:
        pass

    got = threading.Event()

    class Listener(Actor[Known]):
        def on_known(self, _m: Known) -> None:
            got.set()

    ref = Listener.start(name="listener")
    try:
        assert ref.ask(messages.Reconcile(reason="not for you"), timeout=2) is None
        ref.tell(Known())
        assert got.wait(2)
        assert ref.is_alive()
    finally:
        ref.stop()


def test_messages_are_frozen_slotted_keyword_only_values() -> None:
    for message_type in _listed_messages():
        if not dataclasses.is_dataclass(message_type):
            continue  # the inbox unions themselves
        params = message_type.__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen, message_type
        assert hasattr(message_type, "__slots__"), message_type
        assert all(f.kw_only for f in dataclasses.fields(message_type)), message_type
