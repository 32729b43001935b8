use opkit::Operator;

#[derive(Operator)]
pub enum Mode {
    Fast,
}

fn main() {}
