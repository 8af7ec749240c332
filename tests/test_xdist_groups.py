"""``--dist loadgroup`` (``make test``) must honour ``xdist_group`` marks (see tests/conftest.py):
a grouped test's node id carries ``@<group>``, which is what the scheduler groups by."""

import pytest


@pytest.mark.xdist_group("self_check")
def test_a_grouped_test_carries_its_group_in_its_node_id(request: pytest.FixtureRequest) -> None:
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("NOT CHECKED: only meaningful on a --dist loadgroup worker (make test)")
    assert request.node.nodeid.endswith(
        "::test_a_grouped_test_carries_its_group_in_its_node_id@self_check"
    )


def test_an_ungrouped_test_keeps_its_node_id(request: pytest.FixtureRequest) -> None:
    assert "@" not in request.node.nodeid
