"""The demo task family: small functions with unit tests, split train / validation / test."""

from __future__ import annotations

from purpose_agent.envs.coding import CodingTask

T = CodingTask

TASKS: tuple[CodingTask, ...] = (
    T(
        "is_palindrome",
        "return True if the string reads the same backwards, ignoring case and any "
        "character that is not a letter or digit.",
        "is_palindrome",
        (
            "is_palindrome('A man, a plan, a canal: Panama') is True",
            "is_palindrome('race a car') is False",
            "is_palindrome('') is True",
            "is_palindrome('No lemon, no melon') is True",
            "is_palindrome('ab') is False",
        ),
        "is_palindrome(s: str) -> bool",
    ),
    T(
        "fizzbuzz",
        "return a list of strings for 1..n: 'Fizz' for multiples of 3, 'Buzz' for multiples "
        "of 5, 'FizzBuzz' for both, else the number as a string.",
        "fizzbuzz",
        (
            "fizzbuzz(5) == ['1', '2', 'Fizz', '4', 'Buzz']",
            "fizzbuzz(15)[-1] == 'FizzBuzz'",
            "fizzbuzz(0) == []",
            "len(fizzbuzz(30)) == 30",
        ),
        "fizzbuzz(n: int) -> list[str]",
    ),
    T(
        "count_vowels",
        "return how many vowels (a, e, i, o, u, either case) the string contains.",
        "count_vowels",
        (
            "count_vowels('hello') == 2",
            "count_vowels('AEIOU xyz') == 5",
            "count_vowels('') == 0",
            "count_vowels('rhythm') == 0",
        ),
        "count_vowels(s: str) -> int",
    ),
    T(
        "reverse_words",
        "return the sentence with the order of its words reversed; words are separated "
        "by whitespace and the result joins them with single spaces.",
        "reverse_words",
        (
            "reverse_words('hello world') == 'world hello'",
            "reverse_words('  a   b c ') == 'c b a'",
            "reverse_words('') == ''",
            "reverse_words('one') == 'one'",
        ),
        "reverse_words(s: str) -> str",
    ),
    T(
        "running_sum",
        "return the list of running totals of the numbers.",
        "running_sum",
        (
            "running_sum([1, 2, 3, 4]) == [1, 3, 6, 10]",
            "running_sum([]) == []",
            "running_sum([5]) == [5]",
            "running_sum([1, -1, 1]) == [1, 0, 1]",
        ),
        "running_sum(nums: list[int]) -> list[int]",
    ),
    T(
        "dedupe",
        "return the items with duplicates removed, keeping the first occurrence order.",
        "dedupe",
        (
            "dedupe([3, 1, 3, 2, 1]) == [3, 1, 2]",
            "dedupe([]) == []",
            "dedupe(['a', 'a']) == ['a']",
            "dedupe([1, 2, 3]) == [1, 2, 3]",
        ),
        "dedupe(items: list) -> list",
    ),
    T(
        "flatten",
        "flatten a list that may contain nested lists to any depth into one flat list.",
        "flatten",
        (
            "flatten([1, [2, [3, [4]]], 5]) == [1, 2, 3, 4, 5]",
            "flatten([]) == []",
            "flatten([[[]]]) == []",
            "flatten([1, 2]) == [1, 2]",
        ),
        "flatten(items: list) -> list",
    ),
    T(
        "caesar",
        "shift each letter by k places in the alphabet (wrapping around, keeping case); other "
        "characters stay as they are.",
        "caesar",
        (
            "caesar('abc', 1) == 'bcd'",
            "caesar('xyz', 3) == 'abc'",
            "caesar('Hello, World!', 13) == 'Uryyb, Jbeyq!'",
            "caesar('abc', 26) == 'abc'",
        ),
        "caesar(s: str, k: int) -> str",
    ),
    T(
        "to_roman",
        "convert an integer from 1 to 3999 to a Roman numeral string.",
        "to_roman",
        (
            "to_roman(4) == 'IV'",
            "to_roman(9) == 'IX'",
            "to_roman(1994) == 'MCMXCIV'",
            "to_roman(3999) == 'MMMCMXCIX'",
            "to_roman(1) == 'I'",
        ),
        "to_roman(n: int) -> str",
    ),
    T(
        "balanced",
        "return True if every bracket (), [] and {} in the string is closed in the right order; "
        "other characters are ignored.",
        "balanced",
        (
            "balanced('([]{})') is True",
            "balanced('([)]') is False",
            "balanced('') is True",
            "balanced('a(b)c') is True",
            "balanced('((') is False",
        ),
        "balanced(s: str) -> bool",
    ),
    T(
        "second_largest",
        "return the second largest distinct number in the list, or None if there is none.",
        "second_largest",
        (
            "second_largest([3, 1, 4, 4, 2]) == 3",
            "second_largest([5, 5]) is None",
            "second_largest([]) is None",
            "second_largest([-1, -2]) == -2",
        ),
        "second_largest(nums: list[int]) -> int | None",
    ),
    T(
        "chunk",
        "split the list into consecutive chunks of size n (the last one may be shorter).",
        "chunk",
        (
            "chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]",
            "chunk([], 3) == []",
            "chunk([1, 2], 5) == [[1, 2]]",
        ),
        "chunk(items: list, n: int) -> list[list]",
    ),
    T(
        "word_freq",
        "return a dict mapping each lowercase word to how many times it occurs; words are runs "
        "of letters, case-insensitive.",
        "word_freq",
        (
            "word_freq('The cat and the hat.') == {'the': 2, 'cat': 1, 'and': 1, 'hat': 1}",
            "word_freq('') == {}",
            "word_freq('Hi hi HI!') == {'hi': 3}",
        ),
        "word_freq(text: str) -> dict[str, int]",
    ),
    T(
        "is_anagram",
        "return True if the two strings are anagrams of each other, ignoring spaces and case.",
        "is_anagram",
        (
            "is_anagram('Listen', 'Silent') is True",
            "is_anagram('Dormitory', 'dirty room') is True",
            "is_anagram('abc', 'abd') is False",
            "is_anagram('', '') is True",
        ),
        "is_anagram(a: str, b: str) -> bool",
    ),
    T(
        "digit_sum",
        "return the sum of the decimal digits of the integer (use its absolute value).",
        "digit_sum",
        (
            "digit_sum(1234) == 10",
            "digit_sum(0) == 0",
            "digit_sum(-56) == 11",
        ),
        "digit_sum(n: int) -> int",
    ),
    T(
        "merge_sorted",
        "merge two sorted lists into one sorted list.",
        "merge_sorted",
        (
            "merge_sorted([1, 3, 5], [2, 4]) == [1, 2, 3, 4, 5]",
            "merge_sorted([], [1]) == [1]",
            "merge_sorted([], []) == []",
            "merge_sorted([1, 1], [1]) == [1, 1, 1]",
        ),
        "merge_sorted(a: list[int], b: list[int]) -> list[int]",
    ),
    T(
        "title_case",
        "capitalise the first letter of every word and lowercase the rest; words are separated "
        "by single spaces.",
        "title_case",
        (
            "title_case('hello WORLD') == 'Hello World'",
            "title_case('') == ''",
            "title_case('a b') == 'A B'",
        ),
        "title_case(s: str) -> str",
    ),
    T(
        "max_profit",
        "given daily prices, return the best profit from one buy followed by one later sell "
        "(0 if no profit is possible).",
        "max_profit",
        (
            "max_profit([7, 1, 5, 3, 6, 4]) == 5",
            "max_profit([7, 6, 4, 3, 1]) == 0",
            "max_profit([]) == 0",
            "max_profit([2, 4, 1, 7]) == 6",
        ),
        "max_profit(prices: list[int]) -> int",
    ),
)

BY_ID = {t.id: t for t in TASKS}
DEMO_TASK = BY_ID["is_palindrome"]


def split(name: str) -> tuple[CodingTask, ...]:
    """Fixed splits: train (first 10), validation (next 4), test (last 4)."""
    ranges = {"train": (0, 10), "validation": (10, 14), "test": (14, 18)}
    if name not in ranges:
        raise ValueError(f"unknown split {name!r}; use one of {', '.join(ranges)}")
    lo, hi = ranges[name]
    return TASKS[lo:hi]
