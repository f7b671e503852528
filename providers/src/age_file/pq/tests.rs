use std::io::{Read, Write};

use age::secrecy::ExposeSecret;

use super::*;

/// The example identity of the C2SP age specification and its recipient.
const SPEC_IDENTITY: &str = "AGE-SECRET-KEY-PQ-1XX76JRALNLXDMEW0CRK45QMCCH4X06SE84UN3VPM33W6HWDX0H3SK3ZQFR";
const SPEC_RECIPIENT: &str = "age1pq1x34nzsvr0rxjsgdn8zgyhfe8j7ceq5r9rdelkjuh3y235jzxshfg87pzf5zrqtzdxz95paef6caq5aapdmwjjqpjfdyxnzr2zampc3uxy0dg4z2n2gm9su72p0pc3u0jvev55l694v78snxg3yzvcl7yda0eyytqj6a0ec477lnhcy5hzpz4zq3pxanve4cn62gqj3pjy5lqj9c6kyj4v2z8alktn8zh99970x79gjkv7522hv9kfz35zsnxhsx8wwtmu9cy3ftzjgwcp4sshn3llnylnpdsyz5jm72vefv4x5vfwytrefxg4wq3mv42wcrvkj742479zrxzpvp2p3e9fed9f0739vcu80r7ma28qfhnvlv4gfzel9q654dj3zmuvvz893azhxdvs9fxd0r7jzchzcfcs5mkyyjxhw0n2z6dvp9yn9qfdp29h0azxqyjw6v7fhyuzj7zel0uq6j9rd7wgrpz7mf5dnj43jwsgvrc8qcnhy7tu6dkdujuxzkp9xj43xe8h92ktre2a3u3s8mm5mrp9nr9pwkgtz4mdlq9hgn4fps4k57ff6wddn2fy23t47sm20r8km8sd2pcyyafnet8f0dajsrlyjeah4n3mssr6aseevuuskdvq5lzguyvpgwpta742c6698vgutzqgny8usfg0w2he7kq5vyxjd0f9hqg8xk26y9e4th0gezq92q4cpp5p2y9hf5f2cje5l0c3sa3a2qxmm38pxxvhxh99yzmfz0zk7r2s64nnwjhkfgfr3gf8xnmppcgmaykvh5sh6g7vk9790rf8ws0axmr2t7z8aae5fq2029uvcn2ghgt4fu4wgwdc0k0cz52qkvwmuzj8p8k5jgf3xzk5zmrkavjekjrpeq408xz3zxazwkc6tyfmhayrkfpjhwtz5mp8j8guqe43k2q6m2kte03vrw27y3wmqyu5etmt9dnkwcnnpmu9gz9dekfhdevf42ucshphnrk38ra6hx8w5f8q5ru0xdhrjxmwqf6cused7zc5xvq43r0zscjglpwlptpwydhqw64xz7ptjdyeyzpq2zkxtmzg29gzjpvzva4d3l0cenn9xs297wf4y4ukwrunf57xj6pm7nvrkwvtrt8hwcmgv8x7ajw7258ugf9wvkmk4052ekg87tw5vnx8nq2swyzv77v8yqlwsenvamr0zssknwts8rrhfuwj7ykysnq9jxy0uv3kuyt22djszjdtvpz6d0s0kwh8ryynddzud92emeyvvyqktd0jtj7rvvg5gch25v8smlvny3kvn5gagyz475ze2y6q466xqmz2n3hs77lddeqyta2nch5k2u5yacuk9ywnwfdzvyejnucz724hj77hrrmakm7pr3kxsrxq22ejexlud9fy2kdqmkg5yncz7jm5wv2qjk5w5kvcpqsry2yqffh2la52dxfjkjq5rzhjzeyn6dupn0qwtyv7s4lwg3xdarsdlwe2y3tujy480y7z39q259fzx6jhd2j0f5hagqpcpees7hzc2yrk5cy788uk3s7qvp5cpepx24gvws3m2g433exgwppnkjscec8qu4y9z9r7vccexjcjaen42245lmgmxmuavg9alej92322gvvyy2t6267v09ch64y0m53jff0vjj96s0ypk60hr3jw4myd6m5hpn3xjstx7tl2szhpr5qe8jj08ydjc4wy2rch2fhuy3pdfjax5awe9j99ly5hkntzz9fe5zatgjvzdd0kgtxs25njnajyf6ssekp7gelxquusn4pt25czh3scj68kq79wdn5tgm6yvm9nzavrg043x3msnygf8dweknw5jmqd0uvny6ttsn09508k0c55zfnegrm9efhxpfqdkmhh6gjtqmwze9pyyzk3tlhl53k2ykx3qheyty7saeq0d3fzv49zc0k";

fn encrypt(recipients: &[&dyn age::Recipient], plaintext: &[u8]) -> Result<Vec<u8>, age::EncryptError> {
    let encryptor = age::Encryptor::with_recipients(recipients.iter().copied())?;
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out)?;
    writer.write_all(plaintext)?;
    writer.finish()?;
    Ok(out)
}

fn decrypt(identity: &dyn age::Identity, file: &[u8]) -> Result<Vec<u8>, age::DecryptError> {
    let decryptor = age::Decryptor::new_buffered(file)?;
    let mut reader = decryptor.decrypt(std::iter::once(identity))?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn pq_encoded_sizes() {
    assert_eq!(BASE64_STANDARD_NO_PAD.encode([0u8; kem::ENC_LEN]).len(), ENC_BASE64_LEN);
}

#[test]
fn pq_spec_example_identity_gives_the_spec_recipient() {
    let identity: HybridIdentity = SPEC_IDENTITY.parse().unwrap();
    assert_eq!(identity.to_public().to_string(), SPEC_RECIPIENT);
    assert_eq!(identity.to_secret_string().expose_secret(), SPEC_IDENTITY);
    let recipient: HybridRecipient = SPEC_RECIPIENT.parse().unwrap();
    assert!(recipient == identity.to_public());
    // Lower case is the same key (Bech32 is case-insensitive as a whole).
    assert!(SPEC_IDENTITY.to_lowercase().parse::<HybridIdentity>().is_ok());
}

#[test]
fn pq_round_trip_and_wrong_identity() {
    let identity = HybridIdentity::generate();
    let recipient = identity.to_public();
    let text = recipient.to_string();
    assert!(text.starts_with(RECIPIENT_PREFIX) && is_recipient(&text), "{text}");
    assert!(is_identity(identity.to_secret_string().expose_secret()));
    let file = encrypt(&[&recipient], b"API_KEY=value\n").unwrap();
    let header = String::from_utf8_lossy(&file[..file.len().min(40)]).into_owned();
    assert!(header.contains("-> mlkem768x25519 "), "{header}");
    assert_eq!(decrypt(&identity, &file).unwrap(), b"API_KEY=value\n");

    let other = HybridIdentity::generate();
    assert!(matches!(decrypt(&other, &file), Err(age::DecryptError::NoMatchingKeys)));
    let classic = age::x25519::Identity::generate();
    assert!(matches!(decrypt(&classic, &file), Err(age::DecryptError::NoMatchingKeys)));
}

#[test]
fn pq_and_classic_recipients_do_not_mix() {
    let pq = HybridIdentity::generate().to_public();
    let classic = age::x25519::Identity::generate().to_public();
    let mixed: [&dyn age::Recipient; 2] = [&pq, &classic];
    assert!(matches!(encrypt(&mixed, b"x"), Err(age::EncryptError::IncompatibleRecipients { .. })));
    let two_pq = HybridIdentity::generate().to_public();
    let both: [&dyn age::Recipient; 2] = [&pq, &two_pq];
    assert!(encrypt(&both, b"x").is_ok());
}

#[test]
fn pq_malformed_keys_are_refused_without_quoting_them() {
    // Wrong type, bad checksum, wrong length.
    assert!(SPEC_RECIPIENT.replace("age1pq1", "age1pp1").parse::<HybridRecipient>().is_err());
    let mut flipped = SPEC_RECIPIENT.to_owned();
    flipped.pop();
    flipped.push('q');
    assert!(flipped.parse::<HybridRecipient>().is_err());
    let short = bech32_encode(RECIPIENT_HRP, &[0u8; 32]);
    assert!(short.parse::<HybridRecipient>().is_err());
    // An ML-KEM coefficient of 0xfff (not reduced modulo q) is refused.
    let mut bytes = SPEC_RECIPIENT.parse::<HybridRecipient>().unwrap().0.to_bytes().to_vec();
    bytes[0] = 0xff;
    bytes[1] |= 0x0f;
    assert!(bech32_encode(RECIPIENT_HRP, &bytes).parse::<HybridRecipient>().is_err());
    let error = SPEC_IDENTITY.replace('X', "Y").parse::<HybridIdentity>().unwrap_err();
    assert!(!error.contains("AGE-SECRET"), "{error}");
    assert!(format!("{:?}", SPEC_IDENTITY.parse::<HybridIdentity>().unwrap()).contains("age1pq1"));
}

#[test]
fn pq_low_order_x25519_recipient_fails_without_panicking() {
    let mut bytes = SPEC_RECIPIENT.parse::<HybridRecipient>().unwrap().0.to_bytes().to_vec();
    let len = bytes.len();
    bytes[len - 32..].fill(0);
    let recipient: HybridRecipient = bech32_encode(RECIPIENT_HRP, &bytes).parse().unwrap();
    assert!(encrypt(&[&recipient], b"x").is_err(), "sealed to an all-zero X25519 share");
}
