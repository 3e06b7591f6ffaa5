"""The method choice (tiktok/site_methods.py) as a state machine: scripted related-list methods, no browser.

A :class:`ScriptedSite` plays the three methods: each answers a related list unless the site refuses it
(an empty body, as the real site answers a signature it does not accept) or raises what the test asks.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from tiktok_corpus.errors import BlockedError, ItemUnavailable
from tiktok_corpus.tiktok.contract import parse_item_list
from tiktok_corpus.tiktok.related_lists import METHODS, RelatedList, RelatedLists
from tiktok_corpus.tiktok.site_methods import MethodChoice

LIST_BODY = json.dumps({"statusCode": 0, "itemList": [{"id": "11"}, {"id": "12"}]})


class ScriptedSite:
    """Which methods the site refuses right now, the context the worker is in, and every call made."""

    def __init__(self, refuses: set[str] | None = None) -> None:
        self.refuses = refuses or set()
        self.raises: dict[str, Exception] = {}
        self.context = 1
        self.calls: list[str] = []

    def method(self, name: str):
        async def call(video_id: str):
            self.calls.append(name)
            await asyncio.sleep(0)  # let concurrent calls interleave as pages would
            if name in self.raises:
                raise self.raises[name]
            return parse_item_list("" if name in self.refuses else LIST_BODY)

        return call

    def lists(self, via: str = "auto", fallback_after: int = 3) -> RelatedLists:
        async def once(operation, what):  # the session's retry policy, reduced to one try
            return await operation()

        return MethodChoice(
            {name: self.method(name) for name in METHODS},
            via=via,
            fallback_after=fallback_after,
            context=lambda: self.context,
            retry=once,
            what="related list",
        )

    def take_calls(self) -> list[str]:
        calls, self.calls = self.calls, []
        return calls


def get(lists: RelatedLists, video_id: str = "1") -> RelatedList:
    return asyncio.run(lists.get(video_id))


def methods_of(lists: RelatedLists, n: int) -> list[str]:
    return [get(lists).method for _ in range(n)]


@pytest.mark.parametrize(
    ("refuses", "chosen", "probe"),
    [
        (set(), "fetch", ["fetch"]),
        ({"fetch"}, "signed", ["fetch", "signed"]),
        ({"fetch", "signed"}, "page", ["fetch", "signed", "page"]),
    ],
)
def test_the_probe_keeps_the_cheapest_method_the_site_accepts(refuses, chosen, probe):
    site = ScriptedSite(refuses)
    lists = site.lists()

    first = get(lists)

    assert (first.method, [item.id for item in first.value.items]) == (chosen, ["11", "12"])
    assert site.take_calls() == probe
    assert methods_of(lists, 3) == [chosen] * 3
    assert site.take_calls() == [chosen] * 3, "after the probe, one call per list"


def test_one_call_probes_while_the_others_wait_for_its_answer():
    site = ScriptedSite({"fetch", "signed"})
    lists = site.lists()

    async def four_at_once() -> list[RelatedList]:
        return await asyncio.gather(*(lists.get(str(i)) for i in range(4)))

    answers = asyncio.run(four_at_once())

    assert [a.method for a in answers] == ["page"] * 4
    assert Counter(site.calls) == {"fetch": 1, "signed": 1, "page": 4}


def test_a_refused_list_is_filled_by_a_slower_method_and_the_switch_comes_after_fallback_after():
    site = ScriptedSite({"fetch"})
    lists = site.lists(fallback_after=3)
    assert get(lists).method == "signed"
    site.take_calls()

    site.refuses.add("signed")  # the site starts demanding X-Gnarly
    assert methods_of(lists, 3) == ["page"] * 3, "every refused list is filled at once"
    assert site.take_calls() == ["signed", "page"] * 3, "signed is still tried until the third rescue"

    assert methods_of(lists, 2) == ["page"] * 2
    assert site.take_calls() == ["page", "page"], "after three rescues in a row, page is the current method"


def test_occasional_empties_never_move_the_current_method():
    site = ScriptedSite()
    lists = site.lists(fallback_after=2)
    assert get(lists).method == "fetch"
    for _ in range(4):
        site.refuses = {"fetch"}
        assert get(lists).method == "signed"
        site.refuses = set()
        assert get(lists).method == "fetch"
    site.take_calls()
    assert get(lists).method == "fetch" and site.take_calls() == ["fetch"]


def test_a_new_browser_context_is_probed_again():
    site = ScriptedSite({"fetch", "signed"})
    lists = site.lists()
    assert methods_of(lists, 2) == ["page", "page"]
    site.take_calls()

    site.refuses = set()  # the site accepts plain fetches again, but this context does not ask
    assert get(lists).method == "page" and site.take_calls() == ["page"]
    site.context += 1  # a recycle
    assert get(lists).method == "fetch" and site.take_calls() == ["fetch"]


def test_a_list_every_method_refuses_is_one_block():
    site = ScriptedSite(set(METHODS))
    lists = site.lists()

    with pytest.raises(BlockedError, match="every method was refused") as refused:
        get(lists)

    assert refused.value.kind == "empty_body"
    assert site.take_calls() == list(METHODS)
    site.refuses = {"fetch"}
    assert get(lists).method == "signed", "a probe that found nothing probes again"


def test_a_fixed_method_has_no_fallback_its_refusals_are_blocks():
    site = ScriptedSite({"fetch"})
    lists = site.lists(via="fetch")

    for _ in range(3):
        with pytest.raises(BlockedError) as refused:
            get(lists)
        assert refused.value.kind == "empty_body"
    assert site.take_calls() == ["fetch"] * 3

    assert get(site.lists(via="page")).method == "page" and site.take_calls() == ["page"]


def test_a_page_without_frontier_sign_is_a_refusal_of_signed_only():
    site = ScriptedSite({"fetch"})
    site.raises["signed"] = BlockedError("no frontierSign", kind="no_signer")

    assert get(site.lists()).method == "page"
    assert site.take_calls() == ["fetch", "signed", "page"]


def test_an_envelope_without_its_list_is_a_refusal_a_slower_method_fills():
    """The contract's other bot answer (a JSON envelope without ``itemList``) goes on to the slower methods
    and, repeated, moves the worker to the one that answers, as an empty body does."""
    site = ScriptedSite()
    lists = site.lists(fallback_after=2)
    assert get(lists).method == "fetch" and site.take_calls() == ["fetch"]

    with pytest.raises(BlockedError) as parsed:
        parse_item_list(json.dumps({"statusCode": 0, "status_msg": ""}))
    site.raises["fetch"] = parsed.value  # what the parser makes of that answer
    assert methods_of(lists, 3) == ["signed"] * 3
    assert site.take_calls() == ["fetch", "signed", "fetch", "signed", "signed"]  # two rescues, then signed


@pytest.mark.parametrize(
    "error",
    [BlockedError("captcha", kind="captcha"), ItemUnavailable("deleted", kind="deleted")],
    ids=["captcha", "deleted"],
)
def test_failures_that_say_nothing_about_the_method_reach_the_caller_at_once(error):
    site = ScriptedSite()
    site.raises["fetch"] = error

    with pytest.raises(type(error)) as raised:
        get(site.lists())

    assert raised.value is error and site.take_calls() == ["fetch"], "no slower method was tried"
