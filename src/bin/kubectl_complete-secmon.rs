//! `kubectl_complete-secmon`: the helper kubectl (≥ 1.26) runs for `kubectl secmon <TAB>`,
//! with the words typed so far; prints candidates and a Cobra directive line.

fn main() {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let (candidates, directive) = secmon::commands::completion::complete(&words);
    for c in candidates {
        println!("{c}");
    }
    println!(":{directive}");
}
