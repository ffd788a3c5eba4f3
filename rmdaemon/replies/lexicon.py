"""Words that mail clients and people use, per language, as compiled regular expressions.

Everything language-specific lives here so that adding a language is adding words, not code.
Sources: the quote headers and separators that Outlook, Gmail, Apple Mail, Thunderbird, Yahoo
and phone clients write in their localised versions (as collected by other reply parsers' test
suites, which tests/test_replies_corpora.py scores us against), and the prompts of our own agenda template.

Every pattern is anchored and free of nested quantifiers over the same text, so matching a line
is linear in its length (``parse_reply`` must stay fast on hostile input).
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def alternation(words: Iterable[str]) -> str:
    """The literal ``words`` as one regex alternation, written as a prefix tree:
    ``topic(?:s|)`` rather than ``topics|topic``.

    The regex engine tries the branches of an alternation one after another, and our label lists
    have hundreds of words, so matching a line against them was most of the time spent on it.
    As a tree, a line's first letter rules out all but a few branches. A word is tried before the
    words it begins with (as in a longest-first list), and words that part ways cannot both fit
    the same text, so the tree matches what the list in ``words``' order matched.
    """
    tree: dict[str, dict] = {}
    for word in words:
        node = tree
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _branches(tree)


def _branches(node: dict[str, dict]) -> str:
    longer = [re.escape(char) + _branches(child) for char, child in node.items() if char]
    if not longer:
        return ""
    if len(longer) == 1 and "" not in node:
        return longer[0]
    return "(?:" + "|".join(longer) + ("|" if "" in node else "") + ")"


# --- quote headers: "On <date>, <name> wrote:" ---------------------------------------------------
# (prefix words that start the header, verb phrases that end it); matched on one line or on up
# to three lines joined (clients wrap long headers).
WROTE_VERBS = (
    r"wrote", r"writes", r"schrieb", r"schreibt", r"a\s+écrit", r"a\s+ecrit", r"écrit",
    r"escribió", r"escribio", r"escreveu", r"schreef", r"heeft\s+.{0,80}geschreven",
    r"ha\s+scritto", r"scritto", r"skrev", r"kirjoitti", r"napisał(?:\(a\)|a)?", r"napisal",
    r"pisze", r"napsal(?:\(a\))?", r"написал(?:\(а\)|а)?", r"написав", r"написала", r"пише", r"yazdı", r"írta",
    r"ezt\s+írta", r"έγραψε", r"scrie", r"a\s+scris", r"kirjutas", r"je\s+napisao",
    r"napísal", r"piše", r"rašė", r"rakstīja", r"ha\s+escrit", r"va\s+escriure",
)
# The verb may also stand before the name: "Am 25.06.2015 um 10:55 schrieb Test user:".
WROTE_ANY_RE = re.compile(r"(?<!\w)(?:" + "|".join(WROTE_VERBS) + r")(?!\w)", re.IGNORECASE)
WROTE_TAIL_RE = re.compile(
    r"(?:" + "|".join(WROTE_VERBS) + r")(?:\s+(?:the\s+following|följande|følgende)"
    r"(?:\s+den\s.{1,60})?)?\s*[:：]?\s*$",
    re.IGNORECASE,
)
WROTE_HEAD_RE = re.compile(
    r"^(?:On|Am|Le|El|Em|Op|Il|In\s+data|Den|Dne|Dnia|W\s+dniu|Ons|Man|Tir|Tor|Fre|Lør|Søn|Mån|Tis"
    r"|Fre|Lör|Sön|ma|ti|ke|to|pe|la|su|ср|пн|вт|чт|пт|сб|вс)\b",
    re.IGNORECASE,
)
# Headers in languages that put the verb elsewhere or use no verb at all.
WROTE_OTHER_RE = re.compile(
    r"^(?:在.{4,120}写道[:：]?|.{4,120}写道[:：]"  # Chinese
    r"|.{4,120}(?:のメッセージ|さんは書きました|は書きました|wrote)[:：]"  # Japanese
    r"|.{4,120}님이\s*작성(?:하였습니다|했습니다)?[:：]|.{4,120}\s작성[:：]"  # Korean
    r"|20\d\d[./\-]\d\d?[./\-]\d\d?.{0,40}<\S+@\S+>[:：]?"  # 2009/5/12 Name <a@b>
    r"|\d{4}年\d{1,2}月\d{1,2}日.{0,60}[:：]"  # 2023年3月1日(水) 10:00 名前 <a@b>:
    r"|.{1,80}<\S+@\S+>\s*(?:schrieb|wrote|a écrit|escribió|escreveu)\s*[:：])$",
)

# --- separators: everything below is history -----------------------------------------------------
_SEPARATOR_WORDS = (
    # original message (Outlook, Lotus, Yahoo, Zimbra, ...)
    "original message", "original e-mail", "ursprüngliche nachricht", "ursprungliche nachricht",
    "originalnachricht", "message d'origine", "message original", "mensaje original",
    "mensaje orignal", "mensagem original", "oorspronkelijk bericht", "origineel bericht",
    "messaggio originale", "oprindelig meddelelse", "oprindelig besked", "opprinnelig melding",
    "ursprungligt meddelande", "alkuperäinen viesti", "wiadomość oryginalna",
    "oryginalna wiadomość", "původní zpráva", "pôvodná správa", "исходное сообщение",
    "оригинальное сообщение", "eredeti üzenet", "orijinal ileti", "originalna poruka",
    "mesaj original", "原始邮件", "元のメッセージ", "原文", "wiadomość przesłana dalej",
    "メッセージを転送", "doorgestuurd bericht", "weitergeleitete e-mail", "mail original",
    "ursprüngliche e-mail", "message d’origine",
    # forwarded message (Gmail, Thunderbird, Yahoo)
    "forwarded message", "forwarded e-mail", "weitergeleitete nachricht", "message transféré",
    "message transmis", "mensaje reenviado", "mensagem encaminhada", "mensagem reencaminhada",
    "doorgestuurd bericht", "messaggio inoltrato", "videresendt meddelelse",
    "videresendt melding", "vidarebefordrat meddelande", "edelleenlähetetty viesti",
    "välitetty viesti", "przekazana wiadomość", "treść przekazanej wiadomości",
    "přeposlaná zpráva", "preposlaná správa", "пересылаемое сообщение",
    "перенаправленное сообщение", "továbbított üzenet", "iletilmiş mesaj", "iletilen ileti",
    "proslijeđena poruka", "mesaj redirecționat", "переслане повідомлення",
    "перенаправлене повідомлення", "転送メッセージ", "转发的邮件",
)
SEPARATOR_RE = re.compile(
    r"^[\s>]*[-=_*]{2,}\s*(?:" + "|".join(re.escape(w) for w in _SEPARATOR_WORDS) + r")(?!\w)",
    re.IGNORECASE,
)
# The same separator written straight after the sender's text on one line (Outlook XP, flattened
# HTML): dashes on both sides, so "a -- original message -- aside" in running text is rare enough.
# A match starts only at the first dash of a run and never gives dashes back (a long rule line
# is tried once, not at every dash).
GLUED_SEPARATOR_RE = re.compile(
    r"(?<![-=_*])[-=_*]{2,}+\s*(?:" + "|".join(re.escape(w) for w in _SEPARATOR_WORDS) + r")\s*[-=_*]{2,}",
    re.IGNORECASE,
)
# "Begin forwarded message:" (Apple Mail) and friends, with no dashes around.
_FORWARD_INTROS = (
    "begin forwarded message", "forwarded message", "anfang der weitergeleiteten nachricht",
    "début du message réexpédié", "début du message transféré", "inicio del mensaje reenviado",
    "início da mensagem encaminhada", "início da mensagem reencaminhada", "begin doorgestuurd bericht",
    "inizio messaggio inoltrato", "start på videresendt besked", "videresendt melding",
    "vidarebefordrat mejl", "välitetty viesti alkaa", "początek przekazywanej wiadomości",
    "začátek přeposílané zprávy", "začiatok preposlanej správy", "továbbított levél kezdete",
    "započni proslijeđenu poruku", "începe mesajul redirecționat", "начало переадресованного сообщения",
    "ileti başlangıcı", "початок листа, що пересилається", "転送されたメッセージ",
)
FORWARD_INTRO_RE = re.compile(
    r"^[\s>]*" + alternation(_FORWARD_INTROS) + r"\s*[:：]?\s*$",
    re.IGNORECASE,
)
UNDERSCORE_RULE_RE = re.compile(r"^[\s>]*(?:_{10,}|-{10,}|={10,}|—{5,})\s*$")

# --- Outlook-style header blocks: "From: … Sent: … To: … Subject: …" -----------------------------
FROM_LABELS = (
    "from", "von", "de", "van", "da", "od", "fra", "från", "lähettäjä", "feladó", "šalje",
    "от", "від", "від кого", "отправитель", "kimden", "gönderen", "nadawca", "mittente",
    "expeditorul", "de la", "saatja", "发件人", "寄件者", "差出人", "보낸 사람", "보낸사람",
)
OTHER_LABELS = (
    # sent / date
    "sent", "date", "gesendet", "datum", "envoyé", "date d'envoi", "enviado", "enviada", "fecha",
    "verzonden", "verstuurd", "inviato", "data", "wysłano", "wysłane", "odesláno", "sendt",
    "skickat", "lähetetty", "päivämäärä", "elküldve", "dátum", "отправлено", "дата",
    "gönderildi", "tarih", "trimis", "发送时间", "日期", "送信日時", "日付", "보낸 날짜",
    # to / cc
    "to", "an", "à", "a", "para", "aan", "til", "till", "do", "komu", "vastaanottaja",
    "címzett", "кому", "kime", "destinatarul", "pour", "adresat", "prima", "pre", "收件人",
    "宛先", "받는 사람", "cc", "kopie", "copie", "kopia", "kopi", "копия", "抄送", "참조",
    # subject
    "subject", "betreff", "objet", "sujet", "asunto", "assunto", "onderwerp", "oggetto",
    "temat", "předmět", "predmet", "emne", "ämne", "aihe", "tárgy", "тема", "konu",
    "subiectul", "subiect", "naslov", "主题", "件名", "제목",
    # misc header lines clients add
    "reply-to", "répondre à", "responder a", "antwort an", "importance", "priorität",
    "organization", "organisation",
)
_LABEL = r"[\s>]*\**\s*({labels})\s*\**\s*[:：]"
FROM_LINE_RE = re.compile(_LABEL.format(labels=alternation(FROM_LABELS)) + r"\s*\**\s*\S", re.IGNORECASE)
HEADER_LINE_RE = re.compile(_LABEL.format(labels=alternation(FROM_LABELS + OTHER_LABELS)), re.IGNORECASE)
# A flattened Outlook header on one line ("From: A Sent: B To: C Subject: D").
FLAT_HEADER_RE = re.compile(
    r"(?:^|(?<=\s))[\s>*]*(?:from|von|de|van)\s*\**[:：].{1,200}?\s\**(?:sent|gesendet|envoyé|enviado|"
    r"verzonden|date|datum|fecha|data)\s*\**[:：]",
    re.IGNORECASE,
)

# --- signatures ----------------------------------------------------------------------------------
SIG_DELIMITER_RE = re.compile(r"^(?:--|-- |—|__)\s*$")
# "Sent from my iPhone" and its translations: short, alone on a line.
SENT_FROM_RE = re.compile(
    r"^[\s>]*(?:sent from\b"
    r"|sent via\b|sent with\b|sent using\b|sent on the go\b"
    r"|get outlook for\b|download outlook for\b|envoyé de mon\b|envoyé depuis\b"
    r"|envoyé à partir de\b|télécharger outlook pour\b|obtenir outlook pour\b"
    r"|von meinem .{1,40} gesendet|gesendet von\b|gesendet mit\b|diese nachricht wurde von\b"
    r"|enviado desde\b|enviado do meu\b|enviado de meu\b|enviado a partir do\b"
    r"|obtener outlook para\b|baixe o outlook para\b|verzonden vanaf\b|verstuurd vanaf\b"
    r"|verzonden met\b|outlook voor ios\b|inviato da\b|inviato dal mio\b|sendt fra\b"
    r"|skickat från\b|lähetetty\b.{0,30}\b(?:iphone|android|ipad)|wysłano z\b|odesláno z\b"
    r"|отправлено с\b|iphoneから送信|ipadから送信|android.{0,20}から送信|从我的.{1,20}发送"
    r"|发自我的|내 .{1,20}에서 보냄)",
    re.IGNORECASE,
)
SIGN_OFFS = (
    # en
    "best regards", "kind regards", "warm regards", "warmest regards", "regards", "best wishes",
    "all the best", "best", "cheers", "thanks", "thank you", "many thanks", "thanks a lot",
    "thanks again", "thx", "ta", "sincerely", "yours sincerely", "yours truly", "yours",
    "talk soon", "speak soon", "take care", "with thanks", "br", "brgds", "rgds",
    # de
    "mit freundlichen grüßen", "mit freundlichen grüssen", "mit freundlichem gruß",
    "freundliche grüße", "freundliche grüsse", "viele grüße", "viele grüsse", "liebe grüße",
    "liebe grüsse", "beste grüße", "beste grüsse", "herzliche grüße", "schöne grüße", "grüße",
    "grüsse", "gruß", "gruss", "lg", "vg", "mfg", "danke", "vielen dank", "bis bald",
    # fr
    "cordialement", "bien cordialement", "bien à vous", "bien a vous", "salutations",
    "meilleures salutations", "sincères salutations", "bonne journée", "bonne soirée",
    "merci", "merci beaucoup", "à bientôt", "a bientot", "amicalement", "bises",
    # es
    "saludos", "un saludo", "saludos cordiales", "atentamente", "cordialmente", "gracias",
    "muchas gracias", "un abrazo", "abrazos", "hasta pronto",
    # nl
    "met vriendelijke groet", "met vriendelijke groeten", "vriendelijke groet", "groeten",
    "groetjes", "hartelijke groet", "hartelijke groeten", "mvg", "bedankt", "dank je",
    "dank u", "tot snel",
    # pt
    "atenciosamente", "cumprimentos", "abraços", "abraço", "um abraço", "obrigado", "obrigada",
    "saudações", "beijos", "até breve",
    # it, scandinavian, pl, ja
    "cordiali saluti", "distinti saluti", "saluti", "grazie", "med vänlig hälsning",
    "vänliga hälsningar", "hälsningar", "med venlig hilsen", "venlig hilsen", "hilsen",
    "mvh", "vh", "kh", "knus", "mvg", "hälsning", "pozdrawiam", "z poważaniem", "z powazaniem", "s pozdravem",
    "よろしくお願いします", "よろしくお願いいたします", "宜しくお願いします",
)
SIGN_OFF_RE = re.compile(
    r"^[\s>]*(?i:" + alternation(sorted(SIGN_OFFS, key=len, reverse=True))
    + r")(?!\w)\s*[,.!;:\-–—。！、]*\s*(?:[A-ZÀ-Þ][\w.\-']{0,20}(?:\s[A-ZÀ-Þ][\w.\-']{0,20})?\s*[.!]?)?\s*$",
)
# "-Abhishek Kona": a dash glued to a name, alone on the last line.
DASH_NAME_RE = re.compile(r"^-[A-ZÀ-Þ][\w.'\-]{0,25}(?: [A-ZÀ-Þ][\w.'\-]{0,25}){0,2}\s*$")

# Legal footers and external-sender banners: one phrase is enough to drop the paragraph.
DISCLAIMER_RE = re.compile(
    r"(?:confidentiality notice|this (?:e-?mail|message|communication)(?: and any (?:files|"
    r"attachments)[\w ,]{0,40})? (?:is|are|may be|contains?|may contain) (?:strictly )?"
    r"(?:confidential|privileged|intended)|intended (?:solely|only) for the (?:use|person|"
    r"addressee|individual)|if you (?:are not|have received this)[\w ,]{0,30}(?:intended "
    r"recipient|in error)|^disclaimer\s*:"
    r"|diese (?:e-?mail|nachricht)[\w ,]{0,60}vertrauliche|wenn sie nicht der (?:richtige|"
    r"beabsichtigte) adressat|ce (?:message|courriel|mail)[\w ,'’]{0,80}confidenti|si vous n'?êtes "
    r"pas (?:le )?destinataire|este (?:mensaje|correo)[\w ,]{0,80}confidencial|si (?:usted )?no es "
    r"(?:el )?destinatario|dit (?:bericht|e-?mailbericht)[\w ,]{0,80}vertrouwelijk|indien u niet de "
    r"(?:beoogde )?geadresseerde|esta mensagem[\w ,]{0,80}confidencia|se (?:você )?não (?:for|é) o "
    r"destinat[aá]rio|questo messaggio[\w ,]{0,80}riservat|この(?:メール|電子メール).{0,40}機密)",
    re.IGNORECASE,
)

# "This email originated from outside the organisation" banners that mail servers put on top.
BANNER_RE = re.compile(
    r"this e-?mail originated from outside|do not click links or open attachments|^external "
    r"(?:e-?mail|sender)\s*[:\-]|^caution\s*:\s*(?:this e-?mail|external)|^\[external\]"
    r"|diese e-?mail stammt von (?:einem )?externen|ce (?:message|courriel) provient de l'extérieur",
    re.IGNORECASE,
)

# --- auto-replies --------------------------------------------------------------------------------
AUTO_SUBJECT_RE = re.compile(
    r"^\W*(?:(?:re|aw|sv|antw|r)\s*:\s*)?(?:out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response|antwort)"
    r"|autoreply|abwesenheit|automatische antwort|réponse automatique|absence du bureau"
    r"|respuesta automática|respuesta automatica|fuera de la oficina|automatisch antwoord"
    r"|afwezig|resposta automática|resposta automatica|fora do escritório|ausência"
    r"|risposta automatica|fuori sede|fuori ufficio|frånvaro|fraværende|poza biurem"
    r"|不在|自動応答|自动回复|vacation reply|on vacation|undeliverable|delivery status notification"
    r"|mail delivery failed|returned mail|delivery failure|unzustellbar|non remis)",
    re.IGNORECASE,
)

# --- greetings that may precede a command line ----------------------------------------------------
GREETING_RE = re.compile(
    r"^(?:hi|hello|hey|dear|hallo|liebe|lieber|moin|servus|bonjour|salut|coucou|hola|buenos días"
    r"|buenas|hoi|beste|goedemorgen|olá|ola|oi|bom dia|ciao|hej)\b[^.!?\n]{0,40}[,!.]?\s*$",
    re.IGNORECASE,
)

