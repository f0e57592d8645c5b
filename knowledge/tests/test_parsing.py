import pytest

from knowledge.parsing import DocumentError, document_parse
from knowledge.tests.samples import docx_bytes, encrypted_pdf_bytes, pdf_bytes, zip_bomb_bytes

LIMIT = 20 * 1024 * 1024


def parse(name: str, data: bytes, limit: int = LIMIT):
    return document_parse(filename=name, data=data, max_bytes=limit)


def test_plain_text_utf8_and_shift_jis():
    text = "有給休暇は年間20日です。\n\n申請は上長に行ってください。"
    for data in (text.encode("utf-8"), text.encode("utf-8-sig"), text.encode("cp932")):
        parsed = parse("規程.txt", data)
        assert parsed.kind == "text" and parsed.title == "規程"
        assert parsed.sections[0].text == text


def test_markdown_keeps_heading_paths():
    md = (
        "# Handbook\n\nIntro.\n\n## Leave\n\nTwenty days.\n\n"
        "### Carry-over\n\nFive days.\n\n## Travel\n\nBook early.\n"
    )
    parsed = parse("handbook.md", md.encode())
    assert parsed.title == "Handbook"
    assert [(s.heading_path, s.text) for s in parsed.sections] == [
        (("Handbook",), "Intro."),
        (("Handbook", "Leave"), "Twenty days."),
        (("Handbook", "Leave", "Carry-over"), "Five days."),
        (("Handbook", "Travel"), "Book early."),
    ]


def test_html_drops_scripts_and_navigation():
    html = (
        "<html><head><title>旅費規程</title><script>alert('x')</script></head><body>"
        "<nav>Home | About</nav><h1>旅費</h1><p>新幹線は普通車。</p>"
        "<h2>宿泊</h2><ul><li><p>上限は一泊一万円。</p></li></ul></body></html>"
    )
    parsed = parse("travel.html", html.encode())
    assert parsed.title == "旅費規程"
    assert [(s.heading_path, s.text) for s in parsed.sections] == [
        (("旅費",), "新幹線は普通車。"),
        (("旅費", "宿泊"), "上限は一泊一万円。"),
    ]
    assert "alert" not in str(parsed) and "About" not in str(parsed)


def test_pdf_pages_are_kept():
    parsed = parse(
        "policy.pdf", pdf_bytes(["Leave is twenty days.", "Travel by train."], title="Policy")
    )
    assert parsed.title == "Policy"
    assert [(s.page, s.text.strip()) for s in parsed.sections] == [
        (1, "Leave is twenty days."),
        (2, "Travel by train."),
    ]


def test_pdf_with_only_an_owner_password_is_read():
    parsed = parse("restricted.pdf", encrypted_pdf_bytes(user_password=""))
    assert "salary" in parsed.sections[0].text


def test_docx_headings_become_paths():
    data = docx_bytes(
        [
            ("Heading 1", "IT Security"),
            ("", "Lock your screen."),
            ("Heading 2", "Passwords"),
            ("", "Use a manager."),
        ]
    )
    parsed = parse("security.docx", data)
    assert parsed.title == "IT Security"
    assert [(s.heading_path, s.text) for s in parsed.sections] == [
        (("IT Security",), "Lock your screen."),
        (("IT Security", "Passwords"), "Use a manager."),
    ]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("tool.exe", b"MZ", ".exe files are not supported"),
        ("fake.pdf", b"just some text", "not a PDF"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog", "damaged"),
        ("locked.pdf", "encrypted", "protected by a password"),
        ("fake.docx", b"hello", "not a Word document"),
        ("bomb.docx", "bomb", "zip bomb"),
        ("empty.pdf", "blank", "No text could be extracted"),
        ("binary.txt", b"\x00\x01\x02", "binary data"),
        ("blank.md", b"   \n\n", "No text could be extracted"),
    ],
)
def test_bad_files_fail_with_a_clear_message(name, data, message):
    if data == "encrypted":
        data = encrypted_pdf_bytes(user_password="secret")
    elif data == "bomb":
        data = zip_bomb_bytes()
    elif data == "blank":
        data = pdf_bytes([""])
    with pytest.raises(DocumentError, match=message):
        parse(name, data)


def test_size_limit():
    with pytest.raises(DocumentError, match=r"0.0 MB; the limit is 0 MB"):
        parse("big.txt", b"a" * 100, limit=10)
