use opkit::Operator;

#[derive(Operator)]
#[operator(concurrency = 2)]
pub struct WebAppSpec {
    pub replicas: i32,
}

fn main() {}
