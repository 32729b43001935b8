//! Compile-fail tests: each misuse of `#[derive(Operator)]` is an error at the right span that
//! says what to write instead.

#[test]
fn misuse_is_a_compile_error() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
