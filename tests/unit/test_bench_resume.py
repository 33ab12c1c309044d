"""bench/resume.py's accounting of a printing cell across a cut, and its list of cut lengths."""

import pytest

from bench.resume import account
from bench.resume import durations
from bench.resume import ranges


@pytest.mark.parametrize("lines, n, lost, out_of_order, duplicated", [
    ([1, 2, 3, 4], 4, [], 0, 0),
    ([1, 2, 4], 4, [3], 0, 0),  # the message in flight when the line went down
    ([1, 3, 2, 4], 4, [], 1, 0),  # 2 came after a higher number
    ([1, 2, 2, 3, 4], 4, [], 0, 1),  # replayed twice
    ([1, 2, 3, 2], 4, [4], 0, 1),  # a repeat is not also out of order
    ([], 3, [1, 2, 3], 0, 0),
    ([2, 1], 2, [], 1, 0),
])
def test_account(lines, n, lost, out_of_order, duplicated):
    assert account(lines, n) == {"lost": lost, "out_of_order": out_of_order, "duplicated": duplicated}


def test_durations_are_spread_over_the_range_in_a_fixed_order():
    cuts = durations(20, 5, 30, seed=30)
    assert sorted(cuts)[0] == 5 and sorted(cuts)[-1] == 30 and len(set(cuts)) == 20
    assert cuts == durations(20, 5, 30, seed=30) != sorted(cuts)
    assert durations(1, 5, 6, seed=30) == [6]
    assert sorted(durations(2, 5, 6, seed=30)) == [5, 6]


@pytest.mark.parametrize("numbers, text", [([], "-"), ([3], "3"), ([869, 870, 871, 900], "869-871,900"),
                                           ([5, 4, 1], "1,4-5")])
def test_ranges(numbers, text):
    assert ranges(numbers) == text
