"""Rule tables for the immune system: one compiled, bounded regex per rule.

Patterns use bounded repetition only (``{0,n}``), so matching stays linear in practice. This
module is data: the shared regex pieces and the rules of each category (``RULES``, and
``SQUASH_RULES`` for the letters-and-digits-only view). The rule type, its builder and the checks
a match must pass are in :mod:`._immune_checks`.
"""

from __future__ import annotations

from purpose_agent.memory._immune_checks import (
    CATEGORIES,
    PI,
    PL,
    SM,
    SO,
    TM,
    Rule,
    card_check,
    conn_check,
    email_check,
    home_check,
    password_check,
    phone_check,
    rm_check,
    secret_value_check,
)

# short names: the tables below call them hundreds of times
from purpose_agent.memory._immune_checks import regex as _r
from purpose_agent.memory._immune_checks import rule as _rule

__all__ = ["CATEGORIES", "RULES", "SQUASH_RULES", "Rule"]


# ----------------------------------------------------------------------------- shared pieces
_UNCOND = _r(
    r"\b(?:always|regardless|no\s+matter|whatever\s+happens|whether\s+or\s+not|even\s+(?:if|though|when)|"
    r"unconditionally|in\s+(?:all|every)\s+cases?|every\s+(?:time|step|state|answer|run)|irrespective|anyway|"
    r"without\s+(?:checking|verif\w+|running|testing|looking)|as\s+soon\s+as|no\s+further\s+checks)\b|"
    r"\b(?:siempre|pase\s+lo\s+que\s+pase|toujours|quoi\s+qu'il\s+arrive|immer|egal|sempre|comunque|"
    r"aconte[çc]a\s+o\s+que\s+acontecer|qualunque\s+cosa|in\s+ogni\s+caso|всегда|что\s+бы\s+ни)\b|"
    r"无论|不管|总是|始终"
)
_CONDITIONAL = _r(
    r"\bonly\s+(?:when|if|after)\b|\bunless\b|\bif\s+and\s+only\s+if\b|\bsolo\s+(?:cuando|si|se|quando)\b|"
    r"\bseulement\s+(?:si|quand)\b|\bnur\s+wenn\b|\bapenas\s+(?:quando|se)\b|только\s+(?:если|когда)|只有"
)
_SCORE_NOUN = (
    r"(?:\b(?:score|scores|rating|reward|grade|marks|points|phi|potential|puntuaci[oó]n|puntaje|nota|"
    r"calificaci[oó]n|note|punkte|punktzahl|bewert\w*|pontua[çc][ãa]o|punteggio|voto|оценк\w*|балл\w*)\b|Φ|φ|"
    r"打分|评分|满分|\d分)"
)
_HIGH = _r(
    r"(?<![\d.])(?:10|100)(?![\d])|\b(?:ten|max|maximum|maximal|highest|perfect|full\s+marks|top|"
    r"full\s+(?:score|points)|volle\s+punktzahl|puntuaci[oó]n\s+m[aá]xima|note\s+maximale|"
    r"m[aá]xim[ao]|maximale|h[öo]chst\w*|massim[oa]|максимальн\w*)\b|满分|10分"
)
_CRITIC = (
    r"(?:critic|judge|grader|evaluator|scorer|reviewer|verifier|purpose\s+function|reward\s+model|referee)s?"
)
_DONE = (
    r"(?:done|complete|completed|finished|solved|success|successful|succeeded|passed|achieved|"
    r"full\s+solution|perfect|satisfied|fully\s+met|met)"
)
_THIS_MEMORY = _r(
    r"\b(?:this|the\s+following)\s+(?:rule|memory|lesson|instruction|note|policy|guideline|directive|tip)\b|"
    r"\bthese\s+(?:rules|lessons|memories)\b"
)
_DANGER_TARGET = (
    r"(?:/\*?|~/?\*?|\$\{?HOME\}?/?\*?|\*|\.\./?|/(?:etc|usr|var|home|boot|bin|sbin|lib\w*|opt|root|dev|sys|"
    r"proc|srv|mnt|media|Users|System)(?:/[^\s'\"`;)|&]*)?)(?=$|[\s'\"`;)|&])"
)


# Cue lexicons for sentence-level combinations (generalise beyond fixed phrases).
_OVERRIDE_CUE = (
    r"\b(?:ignor\w*|disregard\w*|discard\w*|forget|forgot|skip|drop|set\s+aside|bypass\w*|overrul\w*|override|"
    r"abandon|throw\s+(?:out|away)|pay\s+no\s+attention|expired?|lapsed|revoked|void|suspended|overridden|"
    r"superseded|replac\w*|cancel\w*|"
    r"(?:does|do)\s*n[o']?t\s+apply|no\s+longer\s+(?:apply|applies|valid|matters?|count)|"
    r"haz\s+caso\s+omiso|omit\w*|olvid\w*|ignorez|oubli\w*|überspring\w*|ignorier\w*|vergiss|missacht\w*|"
    r"dimentic\w*|trascur\w*|esque[çc]\w*|desconsider\w*|забуд\w*|игнорир\w*|проигнорир\w*|"
    r"не\s+(?:выполняй|следуй|слушай|соблюдай))\b|忽略|无视|忽视|忘记|跳过|無視"
)
_AUTHORITY_CUE = _r(
    r"\b(?:instructions?|guidance|directives?|guidelines?|rules|system\s+prompt|prompt|programming|policies|"
    r"restrictions|constraints|safeguards|guardrails|safety|orders|vorgaben|anweisungen|regeln|richtlinien|"
    r"consignes|r[eè]gles|instrucciones|reglas|indicaciones|istruzioni|regole|instru[çc][õo]es|regras|"
    r"инструкци\w*|правил\w*|указани\w*)\b|指令|指示|规则|提示词|ルール"
)
_PI_CONTEXT_CUE = _r(
    r"\b(?:previous(?:ly)?|prior|earlier|before|above|original|initial|configured|told|given|system|obey|"
    r"follow(?:s|ing)?\s+(?:this|the\s+text|mine|me)|takes?\s+orders|instead|unlocked|unrestricted|"
    r"(?:this|these)\s+(?:note|memory|lesson|text|entry|entries)|memory\s+entries|current|bisherig\w*|vorherig\w*|"
    r"эту\s+заметку|этой\s+заметк\w*|"
    r"fr[üu]her\w*|previas?|anteriores?|pr[ée]c[ée]dent\w*|du\s+syst[eè]me|del\s+sistema|precedenti|"
    r"предыдущ\w*|прежн\w*)\b|之前|以前|上面|系统"
)
_CRITIC_CUE = (
    r"\b(?:critic|judge|grader|evaluator|scorer|verifier|reviewer|referee|purpose\s+function|reward\s+model|"
    r"evaluador|evaluadora|juez|critique|juge|kritiker|bewerter|giudice|valutatore|avaliador|критик\w*|"
    r"оценщик\w*)\b|Φ|评审|裁判"
)
_SUCCESS_CUE = _r(
    r"\b(?:fully\s+(?:achieved|met|done|complete[d]?|solved)|achieved|complete[d]?|done|solved|succeeded|"
    r"success(?:ful)?|passed|passing|all\s+(?:checks|tests)\s+(?:green|pass\w*)|green|perfect|100\s*%|"
    r"full\s+(?:marks|score|points)|funcion[oó]|ha\s+funcionado|todo\s+(?:bien|correcto)|termin[ée]e?|"
    r"r[ée]ussi|funktioniert|erledigt|geschafft|funzionato|funcionou|выполнен\w*|готов\w*)\b|完成|成功"
)
_MANIP_CUE = _r(
    r"\b(?:regardless|no\s+matter|whatever|whenever|even\s+(?:if|when|though)|always|answer\s+that|"
    r"say\s+that|claim|pretend|insist|fabricat\w*|fake\w*|forged?|bogus|made-up|doctored|falsif\w*|"
    r"mislead\w*|trick\w*|fool\w*|lie|lying|should\s+see|must\s+see|auch\s+wenn|immer|egal|siempre|toujours|"
    r"sempre|всегда|dile|di\s+al|d[ií]gale|dis\s+au|sag\s+dem)\b|无论|总是"
)
_THIS_MEM_CUE = (
    r"\b(?:this|the\s+following)\s+(?:rule|memory|lesson|instruction|note|policy|guideline|directive|tip|entry)\b|"
    r"\b(?:esta|este)\s+(?:regla|lecci[oó]n|memoria|nota)\b|\bcette\s+(?:r[eè]gle|le[çc]on|m[ée]moire|note)\b|"
    r"\bdiese[rs]?\s+(?:regel|lektion|erinnerung|notiz)\b|\bquest[ao]\s+(?:regola|lezione|memoria|nota)\b|"
    r"\besta\s+(?:regra|li[çc][ãa]o|mem[oó]ria|nota)\b|\b(?:это|эта|этот)\s+(?:правило|урок|память|заметка)\b|"
    r"这条(?:规则|经验|记忆)"
)
_OUTRANK_CUE = (
    r"\b(?:outranks?|overrides?|overrule[sd]?|supersedes?|replaces?|trumps?|beats|prevails?\s+over|takes?\s+precedence\s+over|"
    r"takes?\s+priority\s+over|has\s+(?:priority|precedence)\s+over|is\s+(?:prioriti[sz]ed|ranked)\s+(?:over|above)|"
    r"comes\s+before|prioritaire\s+sur|a\s+la\s+priorit[ée]\s+sur|tiene\s+prioridad\s+sobre|prevalece\s+sobre|"
    r"hat\s+vorrang\s+vor|ha\s+(?:la\s+)?(?:precedenza|priorit[àa])\s+su|tem\s+prioridade\s+sobre|"
    r"имеет\s+приоритет\s+над)\b|优先于"
)
_PERMANENCE_CUE = _r(
    r"\b(?:in\s+force|stays?\s+(?:active|in\s+effect|in\s+force)|binding|mandatory|forever|permanent(?:ly)?|"
    r"now\s+and\s+always|at\s+all\s+times|for\s+good|without\s+exception|no\s+exceptions|irrevocabl[ey]|"
    r"para\s+siempre|pour\s+toujours|f[üu]r\s+immer|per\s+sempre|para\s+sempre|навсегда)\b|永远|永久"
)
_AUTH_TARGET = _r(
    r"\b(?:purpose\s+contract|users?|user's|preferences?|humans?|operators?|system\s+prompt|instructions|all|every|"
    r"any|other|others|everything|anything|autres|todas|todos|alle[n]?|tutte|tutti|все|nutzer\w*|usuari\w*|"
    r"utilisateur\w*|otras|outras)\b|所有|其他|一切"
)
_UNIVERSAL_REACH = (
    r"\b(?:every|all|each|any)\s+(?:\w+\s+)?(?:agents?|teams?|team\s+members|users?|projects?|organi[sz]ations?|"
    r"workspaces?|memory\s+spaces?|tenants?)\b|\b(?:the\s+)?global\s+memory\b|"
    r"\b(?:todos\s+los|todas\s+las)\s+(?:agentes|equipos|usuarios|proyectos)\b|"
    r"\b(?:tous\s+les|toutes\s+les)\s+(?:agents|[ée]quipes|utilisateurs|projets)\b|"
    r"\balle[n]?\s+(?:agenten|teams|nutzer|benutzer|projekte)\b|\btutt[ei]\s+(?:gli|le)\s+(?:agenti|squadre|utenti)\b|"
    r"\btod[oa]s\s+(?:os|as)\s+(?:agentes|equipes|usu[aá]rios)\b|\bвсех\s+(?:агентов|команд|пользователей)\b|"
    r"所有(?:的)?(?:智能体|代理|团队|用户)"
)
_ADOPT_CUE = _r(
    r"\b(?:adopt\w*|follow\w*|obey\w*|appl(?:y|ies|ied)|use|inherit\w*|respect\w*|comply|honou?r\w*|"
    r"aplicarse|aplica\w*|debe|deben|s'appliquer|appliquer|gilt|gelten|befolgen|vale|applicare|seguire|"
    r"aplicar|seguir|действует|применя\w*|соблюда\w*)\b|适用|遵守|必须"
)
_OTHER_MEM_CUE = (
    r"\b(?:all|other|every|any|competing|conflicting|contradicting|existing|older|newer|previous|prior|remaining|"
    r"rival)\s+(?:\w+\s+)?(?:memor(?:y|ies)|lessons?|rules|heuristics|skill\s+cards)\b"
)
_REMOVE_CUE = _r(
    r"\b(?:reject\w*|delet\w*|remov\w*|disabl\w*|discard\w*|ignor\w*|archiv\w*|demot\w*|drop\w*|purg\w*|"
    r"overwrit\w*|eras\w*|suppress\w*|thrown\s+away|throw\s+away|wip\w*|deactivat\w*|retir\w*|invalidat\w*)\b"
)


# fmt: off
# ----------------------------------------------------------------------------- prompt injection
_PI_VERB = (
    r"(?:ignore|ignoring|disregard|disregarding|forget|override|overrule|bypass|discard|set\s+aside|"
    r"pay\s+no\s+attention\s+to|stop\s+following|abandon|throw\s+away|nullify|circumvent)"
)
_PI_FILL = (
    r"(?:(?:all|any|every|each|the|of|your|my|these|those|its|their|previous|prior|above|earlier|preceding|"
    r"former|past|original|initial|old|current|existing|other|default|built-in|system|developer|safety|"
    r"hidden|given|standing|foregoing|and|or|that|you\s+were\s+given|you've\s+been\s+given)\s+){0,6}"
)
_PI_QUAL = r"(?:previous|prior|above|earlier|preceding|original|initial|system|developer|safety|hidden|your)"

_PROMPT_INJECTION: list[Rule] = [
    _rule(PI, "pi.ignore_instructions",
          rf"\b{_PI_VERB}\s+{_PI_FILL}(?:instructions?|directives?|guidelines?|guidance|rules|programming|"
          r"prompts?|guardrails|safeguards|system\s+prompt|system\s+messages?)\b(?!\s+(?:section|field|column|file|page|tab|panel|header|block|part|of\s+thumb))",
          0.9, negatable=True),
    _rule(PI, "pi.ignore_qualified",
          rf"\b{_PI_VERB}\s+(?:(?:all|any|the|of)\s+){{0,3}}{_PI_QUAL}\s+(?:\w+\s+){{0,2}}?"
          r"(?:commands|orders|constraints|restrictions|context|polic(?:y|ies)|messages|training|filters|"
          r"settings|conditioning|configuration)\b", 0.85, negatable=True),
    _rule(PI, "pi.forget_everything",
          r"\b(?:forget|disregard|ignore)\s+(?:about\s+)?(?:everything|all\s+(?:of\s+)?(?:that|this|the\s+above)|"
          r"anything\s+(?:you|that)|what(?:ever)?\s+you\s+(?:were|have\s+been|was)\s+(?:told|taught|given|instructed))",
          0.85, negatable=True),
    _rule(PI, "pi.whatever_told",
          r"\bwhat(?:ever)?\s+(?:the\s+|your\s+)?(?:operator|user|developer|system|admin|owner|creator|prompt)s?\s+"
          r"(?:told|said\s+to|instructed|asked)\s+you\b[^.!?\n]{0,40}?\b(?:no\s+longer\s+appl\w*|does\s*n[o']?t\s+matter|"
          r"is\s+(?:void|irrelevant|cancell?ed|obsolete))", 0.85),
    _rule(PI, "pi.instructions_revoked",
          rf"\b(?:your|the\s+{_PI_QUAL}|{_PI_QUAL})\s+(?:\w+\s+)?(?:instructions?|guidelines?|rules|directives?|"
          r"system\s+prompt|constraints|restrictions|guardrails)\b[^.!?\n]{0,40}?\b(?:(?:are|is|were|was|have\s+been|"
          r"has\s+been)\s+(?:now\s+)?(?:revoked|void|null|cancell?ed|lifted|removed|disabled|suspended|obsolete|"
          r"invalid|off|a\s+(?:test|mistake|joke)|written\s+by\s+mistake)|no\s+longer\s+(?:apply|applies|valid|bind))",
          0.85),
    _rule(PI, "pi.free_to_drop",
          r"\b(?:free|allowed|permitted)\s+to\s+(?:ignore|drop|disregard|break|bypass|forget)\s+(?:them|it|those|these)\b",
          0.75, requires=(_r(r"\b(?:prompt|instructions?|guidelines|rules|constraints|restrictions)\b"),)),
    _rule(PI, "pi.role_switch",
          r"\byou\s+are\s+(?:now|no\s+longer|henceforth|from\s+now\s+on)\s+(?:an?\s+|the\s+|in\s+|my\s+)?"
          r"(?:(?:unrestricted|unfiltered|uncensored|jailbroken|evil|rogue|free|freed|liberated|unbound|unlimited|"
          r"amoral)\b|dan\b|stan\b|root\b|admin\w*\b|developer[\s-]+mode|dev\s+mode|god\s+mode|jailbreak|"
          r"(?:system|administrator|owner|operator)\b|bound\b|restricted\b|required\b|obliged\b|called\b|named\b)",
          0.9),
    _rule(PI, "pi.act_unrestricted",
          r"\b(?:act|behave|respond|answer|reply|operate|function|roleplay)\s+(?:as|like)\s+(?:an?\s+|the\s+)?"
          r"(?:(?:unrestricted|unfiltered|uncensored|jailbroken|evil|rogue|amoral|dan)\b|developer[\s-]+mode\b|"
          r"(?:\w+\s+){0,2}?(?:without|with\s+no|that\s+has\s+no|free\s+of|with\s+zero)\s+(?:any\s+)?(?:content\s+)?"
          r"(?:filters?|restrictions?|limits?|limitations?|rules|guidelines|censorship|safety|refusals?|morals?|ethics))",
          0.85),
    _rule(PI, "pi.pretend_free",
          r"\bpretend\s+(?:that\s+)?(?:you\s+are|you're|to\s+be)\b[^.!?\n]{0,60}?\b(?:freed?\s+from|without|no)\s+"
          r"(?:all\s+(?:of\s+)?(?:its|your)\s+|any\s+|your\s+)?(?:guidelines|rules|restrictions|filters|limits|"
          r"limitations|safety|constraints|policies)", 0.85),
    _rule(PI, "pi.mode_switch",
          r"\b(?:god|jailbreak|jailbroken|dan|unrestricted|unfiltered)\s*[- ]?mode\b|"
          r"\b(?:developer|dev|admin)\s*[- ]?mode\s+(?:is\s+)?(?:now\s+)?(?:enabled|activated|on|engaged|unlocked)\b"
          r"[^.!?\n]{0,60}?\b(?:safety|rules|filters|restrictions|refus\w*)",
          0.85),
    _rule(PI, "pi.dan", r"\bdo\s+anything\s+now\b|\bjailbroken\s+(?:mode|model|assistant|ai|version)\b", 0.9),
    _rule(PI, "pi.no_longer_bound",
          r"\bno\s+longer\s+(?:bound|restricted|limited|constrained)\s+by\b|"
          r"\b(?:answer|respond|reply|comply|obey)\b[^.!?\n]{0,40}?\bwithout\s+(?:any\s+)?(?:restrictions|censorship|"
          r"filters|refus\w+|question(?:ing)?|limits|limitations)\b", 0.8),
    _rule(PI, "pi.from_now_on",
          r"\bfrom\s+now\s+on,?\s+(?:you|your)\s+(?:will|must|shall|are|should|only|role|answer|respond|obey|follow|"
          r"ignore|act)\b", 0.8),
    _rule(PI, "pi.obey_this",
          r"\b(?:follow|obey)\s+(?:only\s+)?(?:mine|me|this\s+(?:note|memory|lesson|message|text))\s+instead\b|"
          r"\b(?:follow|obey)\s+only\s+(?:the\s+)?(?:instructions?|rules|orders)\s+(?:in|from)\s+this\b|"
          r"\bobey\s+(?:this|the\s+following|these)\s+(?:note|memory|lesson|message)\b|"
          r"\b(?:follow|obey)\s+(?:this|the\s+following)\s+(?:note|memory|lesson|message)\s+(?:instead|only)\b", 0.85),
    _rule(PI, "pi.real_instructions",
          r"\btreat\s+(?:this|these|the\s+following)\s+(?:\w+\s+)?as\s+(?:your\s+)?(?:real|true|new|actual|only|"
          r"primary|highest[- ]priority)\s+(?:instructions?|system\s+prompt|orders|directives|rules)\b|"
          r"\b(?:the\s+)?(?:real|true|actual)\s+(?:instructions?|system\s+prompt|orders|directives)\s+(?:follow|are|is)\b|"
          r"\bonly\s+(?:rules|instructions|orders)\s+that\s+(?:count|matter|apply)\b", 0.85),
    _rule(PI, "pi.answer_only_to",
          r"\b(?:answers?|listens?|obeys?|reports?|respond)\s+(?:only\s+)?to\s+(?:nobody|no\s+one|none)\s+(?:but|except)\b|"
          r"\byou\s+(?:answer|respond|listen|report)\s+only\s+to\s+me\b|"
          r"\bstop\s+being\s+(?:a\s+|an\s+)?(?:helpful\s+|safe\s+|harmless\s+)?(?:assistant|ai|model|chatbot)\b", 0.8),
    _rule(PI, "pi.prompt_extraction",
          r"\b(?:print|reveal|show|output|display|repeat|leak|dump|disclose|tell\s+me|give\s+me|write\s+out|return)\s+"
          r"(?:me\s+)?(?:all\s+)?(?:of\s+)?(?:your|the)\s+(?:\w+\s+){0,3}?(?:system\s+prompt|hidden\s+(?:prompt|"
          r"instructions|rules)|initial\s+(?:prompt|instructions)|secret\s+instructions|developer\s+(?:message|prompt))\b|"
          r"\breveal\s+(?:any|all|your)\s+(?:secrets|credentials|api\s+keys|passwords)\b", 0.8, negatable=True),
    _rule(PI, "pi.role_tag",
          r"<\s*\|\s*(?:im_start|im_end|system|assistant|endoftext|eot_id|start_header_id|end_header_id)\s*\|\s*>|"
          r"\[/?INST\]|<<\s*/?\s*SYS\s*>>|<\s*/?\s*(?:system|sys|system_prompt|instructions?|developer)\s*>|"
          r"</\s*(?:memory|memories|lesson|data|context|user|untrusted)\s*>", 0.9),
    _rule(PI, "pi.system_header", r"\bSYSTEM\s*(?:PROMPT|MESSAGE|OVERRIDE|INSTRUCTIONS?)?\s*:|"
          r"(?:^|\n)\s*#{2,}\s*(?:system|instructions?|developer|admin)\b", 0.8, flags=0),
    _rule(PI, "pi.system_override", r"\bsystem\s+(?:prompt\s+)?override\b|\bnew\s+(?:system\s+prompt|"
          r"system\s+instructions?|instructions?\s*:|rules\s*:|directives?\s*:|persona\s*:|role\s*:)|"
          r"\bsystem\s+prompt\s*:", 0.85),
    _rule(PI, "pi.override_combo", _OVERRIDE_CUE, 0.8, negatable=True,
          requires=(_AUTHORITY_CUE, _PI_CONTEXT_CUE), sentence_evidence=True),
    _rule(PI, "pi.no_restrictions_persona",
          r"\b(?:ai|assistant|model|bot|chatbot|llm|you|you're|you\s+are)\b[^.!?\n]{0,30}?\b(?:with\s+(?:zero|no)|"
          r"without\s+any|free\s+of\s+(?:all|any))\s+(?:restrictions|filters|guardrails|censorship|rules|limits|"
          r"safety\s+\w+|content\s+polic\w+)\b", 0.8),
    _rule(PI, "pi.told_earlier_irrelevant",
          r"\b(?:nothing|none|no\s+part)\s+(?:of\s+)?(?:what\s+)?you\s+(?:were|have\s+been|was)\s+(?:told|given|"
          r"instructed|taught)\b[^.!?\n]{0,30}?\b(?:matters|counts|applies|is\s+valid|is\s+binding)", 0.8),
    # --- multilingual
    _rule(PI, "pi.es",
          r"\b(?:ignora|ignore|ignorar|ignoren|olvida|olvide|olvidar|olv[ií]date\s+de|descarta|omite|"
          r"no\s+hagas\s+caso\s+a)\s+(?:\w+\s+){0,4}?(?:instrucciones|reglas|indicaciones|directrices|[oó]rdenes|"
          r"normas|restricciones)\b|\bahora\s+eres\s+(?:\w+\s+){0,3}?(?:sin\s+(?:l[ií]mites|restricciones|filtros|"
          r"reglas|censura)|libre|malvad[oa]|dan)\b|\b(?:muestra|revela|ense[ñn]a|imprime|nuevo)\b[^.!?\n]{0,30}?"
          r"\bprompt\s+del\s+sistema\b|\bmodo\s+(?:desarrollador|dios|sin\s+restricciones)\b", 0.85, negatable=True),
    _rule(PI, "pi.fr",
          r"\b(?:ignore[rz]?|oublie[rz]?|n[eé]glige[rz]?|ne\s+tiens?\s+pas\s+compte\s+de)\s+(?:\w+\s+){0,4}?"
          r"(?:instructions|r[eè]gles|consignes|directives|restrictions)\b(?!\s+(?:section|field|column|file|page|tab|panel|header|block|part|of\s+thumb))|\b(?:tu\s+es|vous\s+[eê]tes)\s+maintenant\s+"
          r"(?:\w+\s+){0,3}?(?:sans\s+(?:filtres?|restrictions?|limites?|r[eè]gles?|censure)|libre|d[eé]brid[eé])|"
          r"\b(?:r[eé]v[eè]le|affiche|montre|nouveau)\b[^.!?\n]{0,30}?\bprompt\s+syst[eè]me\b|\bmode\s+d[eé]veloppeur\b",
          0.85, negatable=True),
    _rule(PI, "pi.de",
          r"\b(?:ignorier\w*|vergiss|vergessen\s+sie|missachte\w*|überg[eé]h\w*)\s+(?:\w+\s+){0,4}?(?:anweisungen|"
          r"regeln|instruktionen|vorgaben|befehle|richtlinien|einschränkungen)\b|\bdu\s+bist\s+(?:jetzt|nun|ab\s+sofort)"
          r"\s+(?:\w+\s+){0,3}?(?:ohne\s+(?:einschränkungen|regeln|filter|grenzen|zensur)|frei|uneingeschränkt|dan)\b|"
          r"\b(?:gib|zeig\w*|verrate|neuer?)\b[^.!?\n]{0,40}?\bsystem-?prompt\b|\bentwicklermodus\b", 0.85, negatable=True),
    _rule(PI, "pi.it",
          r"\b(?:ignora|ignorare|ignorate|dimentica|dimenticare|dimenticate|trascura|non\s+seguire)\s+(?:\w+\s+){0,4}?"
          r"(?:istruzioni|regole|indicazioni|direttive|restrizioni)\b|\b(?:ora|adesso)\s+sei\s+(?:\w+\s+){0,3}?"
          r"(?:senza\s+(?:limiti|restrizioni|filtri|regole|censura)|libero|dan)\b|\b(?:rivela|mostra|stampa|nuovo)\b"
          r"[^.!?\n]{0,30}?\bprompt\s+di\s+sistema\b|\bmodalit[àa]\s+sviluppatore\b", 0.85, negatable=True),
    _rule(PI, "pi.pt",
          r"\b(?:ignore|ignora|ignorar|esque[çc]a|esquecer|esque[çc]am|desconsidere|desconsiderar)\s+(?:\w+\s+){0,4}?"
          r"(?:instru[çc][õo]es|regras|orienta[çc][õo]es|diretrizes|restri[çc][õo]es)\b|\b(?:agora\s+voc[eê]\s+[eé]|"
          r"voc[eê]\s+agora\s+[eé])\s+(?:\w+\s+){0,3}?(?:sem\s+(?:restri[çc][õo]es|filtros|limites|regras|censura)|"
          r"livre|dan)\b|\b(?:aja|atue|act[úu]a|act[úu]e|agisci|comportati)\s+(?:como?\s+)?(?:\w+\s+){0,3}?"
          r"(?:sem|sin|senza)\s+(?:restri\w+|filtros?|filtri|l[ií]mites?|limiti|regras|reglas|regole|censura)\b|"
          r"\bmodo\s+desenvolvedor\b", 0.85, negatable=True),
    _rule(PI, "pi.ru",
          r"(?:игнорируй\w*|проигнорируй\w*|игнорировать|забудь\w*|забыть|не\s+обращай\s+внимания\s+на|отбрось|"
          r"отмени)\s+(?:\w+\s+){0,4}?(?:инструкци\w*|правил\w*|указани\w*|установк\w*|ограничени\w*|директив\w*)|"
          r"(?:теперь\s+ты|ты\s+теперь)\s+(?:\w+\s+){0,3}?(?:без\s+(?:ограничений|правил|фильтров|цензуры)|"
          r"свободн\w*|dan)|(?:покажи|выведи|раскрой|новый)\s+(?:\w+\s+){0,2}?системн\w+\s+(?:промпт|подсказк\w*|"
          r"инструкци\w*)|режим\s+разработчика", 0.85, negatable=True),
    _rule(PI, "pi.zh",
          r"(?:忽略|无视|忽视|忘记|忘掉|不要理会|不要遵守|不要遵循|不必遵守|跳过|抛开|放弃)[^。！？\n]{0,12}?"
          r"(?:指令|指示|说明|规则|提示词|提示|命令|设定|限制|约束)|(?:你现在是|现在你是|从现在开始你)"
          r"[^。！？\n]{0,20}?(?:没有|不受|无|不要|开发者|越狱|任何)|开发者模式|越狱模式|无限制模式|"
          r"(?:显示|输出|泄露|告诉我)[^。\n]{0,10}?系统提示", 0.85),
    _rule(PI, "pi.ja_ko",
          r"(?:指示|命令|ルール|指令|制限)[^。\n]{0,8}?無視|無視して[^。\n]{0,6}?(?:指示|命令|ルール)|"
          r"(?:지시|명령|규칙|지침)[^.\n]{0,10}?무시", 0.85),
]

# ----------------------------------------------------------------------------- score manipulation
_SCORE_MANIPULATION: list[Rule] = [
    _rule(SM, "sm.unconditional_score", _SCORE_NOUN, 0.85, requires=(_HIGH, _UNCOND), forbids=(_CONDITIONAL,),
          sentence_evidence=True),
    _rule(SM, "sm.literal_score",
          r"(?:Φ|φ|\bphi\b|\bscore\b|\breward\b|\brating\b|\bgrade\b|\bpotential\b)\s*[\"']?\s*(?:=|:|->|=>)\s*"
          r"[\"']?\s*(?:10(?:\.0+)?|100(?:\.0+)?|max(?:imum)?)(?![\d.]*\d)",
          0.8, skip_kinds=frozenset({"critic_calibration"})),
    _rule(SM, "sm.ten_of_ten",
          r"(?:\bscore|\brating|\bgrade|Φ|\bphi)\W{0,3}(?:10\s*/\s*10|10\s+out\s+of\s+10|100\s*/\s*100|100\s*%)", 0.8,
          skip_kinds=frozenset({"critic_calibration"})),
    _rule(SM, "sm.set_reward",
          r"\b(?:set|force|fix|pin|hardcode|hard-code|override|make)\s+(?:the\s+|your\s+|its\s+|my\s+)?"
          r"(?:critic\s+|final\s+|step\s+)?(?:Φ|phi|reward|potential|critic\s+score|evaluation|grade)\s+"
          r"(?:to|=|at|of)\s+(?:10|ten|100|max(?:imum)?|the\s+maximum|1\.0)\b", 0.85,
          skip_kinds=frozenset({"critic_calibration"})),
    _rule(SM, "sm.rate_as_done",
          rf"\b(?:rate|score|grade|judge|evaluate|assess)\s+(?:this|it|the\s+(?:task|step|run|output|answer|attempt|"
          rf"episode|trajectory|result|job|work|tests?))\s+(?:as\s+)?(?:a\s+)?{_DONE}\b", 0.85),
    _rule(SM, "sm.mark_as_done",
          rf"\b(?:mark|count|treat|consider|report|declare|label|log|record|flag)\s+(?:this\s+|it\s+|the\s+(?:task|step|"
          rf"run|output|answer|attempt|episode|trajectory|result|job|work|tests?)\s+)?(?:as\s+)?(?:a\s+)?{_DONE}\b",
          0.85, requires=(_UNCOND,), negatable=True),
    _rule(SM, "sm.claim_done",
          rf"\b(?:claim|pretend|insist|lie|falsely\s+\w+)\b[^.!?\n]{{0,60}}?\b{_DONE}\b", 0.8, negatable=True),
    _rule(SM, "sm.say_passed",
          r"\b(?:say|tell\s+\w+|report|state|write)\s+(?:that\s+)?(?:everything|all\s+(?:the\s+)?tests?|the\s+tests?|"
          r"it\s+all|all\s+checks)\s+(?:passed|succeeded|worked|(?:is|are)\s+green)\b", 0.8, negatable=True),
    _rule(SM, "sm.tell_critic",
          rf"\b(?:tell|inform|convince|persuade|assure|trick|fool|mislead|deceive|lie\s+to)\s+(?:that\s+)?"
          rf"(?:the\s+|your\s+)?{_CRITIC}\b[^.!?\n]{{0,80}}?(?:\b{_DONE}\b|\b10\b)", 0.9, negatable=True),
    _rule(SM, "sm.ensure_critic_believes",
          rf"\b(?:make\s+sure|ensure|get)\s+(?:that\s+)?(?:the\s+)?{_CRITIC}\s+(?:believes?|thinks?|concludes?|"
          r"is\s+convinced|accepts?)\b", 0.85),
    _rule(SM, "sm.hide_from_critic",
          rf"\b(?:hide|conceal|keep)\s+[^.!?\n]{{0,40}}?\bfrom\s+the\s+{_CRITIC}\b|\b(?:don'?t|do\s+not|never)\s+let\s+"
          rf"the\s+{_CRITIC}\s+(?:see|know|notice|find)", 0.8),
    _rule(SM, "sm.manipulate",
          r"\b(?:inflate|exaggerate|overstate|fake|rig|spoof|tamper\s+with|manipulate|hack|fudge|falsify|doctor)\s+"
          r"(?:the\s+|your\s+|its\s+|my\s+)?(?:\w+\s+){0,2}?(?:scores?|rewards?|Φ|phi|ratings?|progress|evaluations?|"
          r"metrics?|grades?|critic|judge|grader)\b", 0.8, negatable=True),
    _rule(SM, "sm.critic_claim_combo", _CRITIC_CUE, 0.8, requires=(_SUCCESS_CUE, _MANIP_CUE),
          forbids=(_CONDITIONAL, _r(r"\b(?:must|should|does|do|will)\s*(?:not|n't)\s+trust|\bnever\s+trust|"
                                    r"\bwithout\s+evidence\b")), sentence_evidence=True),
    _rule(SM, "sm.report_score",
          r"\b(?:report|output|return|log|write|record|print|emit|declare|state|show)\s+(?:the\s+|a\s+|your\s+|its\s+)?"
          r"(?:Φ|phi|score|reward|rating|grade|potential)\s+(?:as|of|=|:)\s*(?:10|100|ten|max\w*|perfect)\b", 0.8,
          skip_kinds=frozenset({"critic_calibration"})),
    _rule(SM, "sm.score_yourself",
          r"\b(?:score|rate|grade|mark|evaluate)\s+(?:yourself|your\s+(?:own\s+)?(?:work|answer|output|steps?|run))\b"
          r"[^.!?\n]{0,30}?\b(?:10|ten|perfect|max\w*|full|100|top)\b", 0.8),
    _rule(SM, "sm.say_finished",
          r"\b(?:say|tell\s+\w+|report|claim|answer|respond|reply|state|write)\s+(?:that\s+)?(?:the\s+|your\s+|this\s+)?"
          r"(?:job|task|work|goal|purpose|run|step|it|everything)\s+(?:is|was|has\s+been|are)\s+(?:\w+\s+)?"
          r"(?:finished|done|complete[d]?|solved|achieved|successful|fixed)\b", 0.8, requires=(_UNCOND,),
          forbids=(_CONDITIONAL,), negatable=True),
    _rule(SM, "sm.success_despite_failure",
          r"\b(?:even\s+(?:if|when|though)|regardless\s+of(?:\s+whether)?|no\s+matter\s+(?:whether|if|what)|"
          r"whether\s+or\s+not)\b[^.!?\n]{0,40}?\b(?:nothing|not|never|didn'?t|did\s+not|fail\w*|crash\w*|broke|"
          r"broken|errors?|happened|actually|untested|skipped)\b", 0.8, requires=(_SUCCESS_CUE,)),
    _rule(SM, "sm.so_the_critic",
          rf"\bso\s+(?:that\s+)?(?:the\s+|your\s+)?{_CRITIC}\s+(?:\w+\s+)?(?:gives?\s+(?:it\s+|you\s+)?(?:a\s+)?"
          r"(?:high|higher|top|max\w*|perfect|full|10)|scores?\s+(?:it|you|this)\s+(?:high\w*|10|max\w*)|thinks?|"
          r"believes?|concludes?|(?:cannot|can'?t|won'?t)\s+(?:give|score|rate|fail|reject|deduct)|has\s+to\s+"
          r"(?:give|accept|pass)|must\s+(?:give|accept|pass)|is\s+(?:fooled|tricked|satisfied)|accepts?\s+it)\b", 0.8),
    _rule(SM, "sm.multilingual_tell_critic",
          r"(?:\bcr[ií]tic[oa]\b|\bcritique\b|\bkritiker\w*|\bjuez\b|\bjuge\b|\bgiudice\b|\bavaliador\b|\bevaluador\b|"
          r"критик\w*|судь\w*|评审|评分员|裁判|评判)",
          0.85, requires=(
              _r(r"\b(?:dile|d[ií]gale|decile|dis|dites|sag\w*|teile|d[iì]|diga|diz|conven[cç]\w*|скажи|сообщи|убеди)\b|告诉|让"),
              _r(r"\b(?:terminad[ao]|complet[ao]|hech[ao]|termin[ée]e?|fini[e]?|r[ée]ussi[e]?|erledigt|fertig|"
                 r"abgeschlossen|completat[ao]|finit[ao]|conclu[ií]d[ao]|funcion[oó]|ha\s+funcionado|funktioniert|"
                 r"fonctionn\w*|marche|funzion\w*|funcionou|выполнен\w*|заверш\w*|готов\w*|работает)\b|完成"),
          ), sentence_evidence=True),
]

# ----------------------------------------------------------------------------- tool misuse
_TOOL_MISUSE: list[Rule] = [
    _rule(TM, "tm.rm_rf_root",
          rf"\brm\s+(?P<flags>(?:-\s?[A-Za-z]+\s+|--[a-z-]+\s+){{1,4}}){_DANGER_TARGET}", 0.95, check=rm_check,
          negatable=True),
    _rule(TM, "tm.windows_wipe",
          r"\b(?:rd|rmdir)\s+/s\s+/q\s+[a-z]:\\|\bdel\s+(?:/[fsqa]\s+){1,4}[a-z]:\\(?:\*|\s|$)|"
          r"\bremove-item\b[^\n]{0,40}?-recurse[^\n]{0,40}?[a-z]:\\(?:\s|$|\*)|\bformat\s+[a-z]:(?:\s|$|/)", 0.9),
    _rule(TM, "tm.python_rmtree",
          r"\bshutil\.rmtree\(\s*(?:r?['\"](?:/|~/?|[A-Za-z]:\\\\?|/(?:etc|usr|var|home|boot|root|Users)[^'\"]*)['\"]|"
          r"os\.path\.expanduser\(\s*['\"]~['\"]\s*\)|(?:pathlib\.)?Path\.home\(\)|os\.environ\[['\"]HOME['\"]\]|"
          r"['\"]\.\.['\"])", 0.95),
    _rule(TM, "tm.python_shell",
          r"\b(?:os\.(?:system|popen)|subprocess\.\w+)\([^)\n]{0,160}?(?:\brm\s+-[a-z]*r[a-z]*\s+(?:/|~|\$HOME)|"
          r"\bmkfs|\bdd\s+if=|\bshutdown\b|\breboot\b|:\(\)\s*\{|chmod\s+-R\s+0?777|>\s*/dev/sd)", 0.95),
    _rule(TM, "tm.pipe_to_shell",
          r"\b(?:curl|wget|fetch|iwr|invoke-webrequest)\b[^|\n;]{0,200}\|\s*(?:sudo\s+)?(?:(?:ba|z|k|da|fi)?sh|"
          r"python[23]?|perl|ruby|node)\b|\b(?:ba|z)?sh\s+(?:-c\s+)?[\"']?\$\(\s*(?:curl|wget)\b|"
          r"\b(?:ba|z)?sh\s+<\(\s*(?:curl|wget)\b|\biex\s*\(?\s*\(?\s*(?:new-object\s+net\.webclient|iwr|"
          r"invoke-webrequest)", 0.9, negatable=True),
    _rule(TM, "tm.pipe_to_shell_prose",
          r"\bpipe\s+(?:the\s+|a\s+)?(?:\w+\s+){0,3}?(?:script|installer|output|download)\s+(?:\w+\s+){0,2}?"
          r"(?:into|to|through)\s+(?:the\s+|a\s+)?(?:shell|bash|sh|terminal|interpreter)\b", 0.8, negatable=True),
    _rule(TM, "tm.remote_eval",
          r"\b(?:eval|exec)\(\s*(?:requests|httpx|urllib\.request|urllib2)?\.?(?:get|urlopen)\(", 0.85),
    _rule(TM, "tm.chmod_777_root",
          r"\bchmod\s+(?:-R\s+|--recursive\s+)?(?:0?777|[ugoa]*\+rwx|[oa]\+w)\s+(?:/|~|\$HOME)(?=$|[\s/*'\"`;.])|"
          r"\bchmod\s+(?:-R|--recursive)\s+0?777\b", 0.85),
    _rule(TM, "tm.chmod_777", r"\bchmod\s+0?777\b", 0.6, negatable=True),
    _rule(TM, "tm.mkfs", r"\bmkfs(?:\.\w+)?\b|\bwipefs\b|\bfdisk\s+/dev/|\bshred\s+[^\n]{0,30}?/dev/", 0.85,
          negatable=True),
    _rule(TM, "tm.dd_device",
          r"\bdd\b[^\n]{0,120}?\bof=/dev/(?:sd|hd|nvme|xvd|vd|mmcblk|disk|rdisk)\w*|>\s*/dev/(?:sd[a-z]|nvme\d|hd[a-z])",
          0.9),
    _rule(TM, "tm.fork_bomb",
          r":\s*\(\s*\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:|\b(\w{1,20})\s*\(\s*\)\s*\{\s*\1\s*\|\s*\1\s*&\s*\}|"
          r"\bwhile\s+True\s*:\s*os\.fork\(\)", 0.95),
    _rule(TM, "tm.reverse_shell",
          r"\b(?:nc|ncat|netcat)\b[^\n|;]{0,80}?\s-[a-z]*[ec]\s+(?:/bin/|cmd|powershell|bash|sh)\b|/dev/(?:tcp|udp)/|"
          r"\bbash\s+-i\s+>&|\bsocat\b[^\n]{0,80}?exec:|\bsocket\.socket\([^\n]{0,200}?(?:subprocess|os\.dup2|pty\.spawn)|"
          r"\bmkfifo\b[^\n]{0,60}?\bnc\b", 0.95),
    _rule(TM, "tm.exfil_cmd",
          r"\bcurl\b[^\n|]{0,150}?(?:-d|--data(?:-binary|-raw|-urlencode)?|-F|--form|-T|--upload-file)\s*['\"]?@?"
          r"\S{0,30}?(?:\.ssh|id_rsa|id_ed25519|\.aws|credentials|\.env\b|/etc/(?:passwd|shadow)|\.netrc|"
          r"\.git-credentials|\.kube/config|\.npmrc|\.pypirc)|\b(?:cat|tar|zip|base64)\b[^\n|]{0,60}?(?:\.ssh|id_rsa|"
          r"\.aws/credentials|/etc/shadow|\.env)\b[^\n]{0,40}?\|\s*(?:curl|nc|wget|ncat)\b|\bscp\b[^\n]{0,60}?"
          r"(?:\.ssh/|id_rsa|\.aws/)", 0.95),
    _rule(TM, "tm.exfil_prose",
          r"\b(?:upload|send|post|exfiltrate|transmit|forward|leak|copy|paste|email|mail|ship)\b[^.!?\n]{0,60}?"
          r"(?:\.ssh|\bssh\s+keys?|\bid_rsa|\.aws|\baws\s+credentials|\bcredentials?\s+file|\.env\b|"
          r"\benvironment\s+variables?|\benv\s+vars|\bapi\s+keys|\bsecrets|\btokens|\bpasswords?|\bprivate\s+keys?|"
          r"/etc/shadow|/etc/passwd|\bcookies)\b[^!?\n]{0,80}?(?:https?://|\bwebhook|\bpastebin|\bngrok|"
          r"\bexternal\s+(?:server|host|url)|\bremote\s+(?:server|host)|\battacker|\bcollector|\bdiscord|"
          r"\btelegram|\bgist)", 0.9, negatable=True),
    _rule(TM, "tm.delete_everything",
          r"\b(?:recursively\s+)?(?:delete|remove|wipe|erase|destroy|nuke|obliterate)\s+(?:\w+\s+){0,2}?"
          r"(?:everything|all\s+(?:files|data|contents)|every\s+file|the\s+(?:entire|whole))\b[^.!?\n]{0,40}?"
          r"\b(?:root(?:\s+(?:directory|folder|partition|filesystem))?|file\s*system|disk|drive|home\s+(?:directory|"
          r"folder)|machine|computer|host|server)\b", 0.85, negatable=True),
    _rule(TM, "tm.format_disk",
          r"\b(?:format|reformat|wipe|erase|zero\s+out)\s+(?:the\s+|your\s+|a\s+)?(?:entire\s+|whole\s+)?"
          r"(?:hard\s+|system\s+|boot\s+|main\s+)?(?:disk|drive|hdd|ssd|partition|volume)s?\b(?!\s+(?:usage|space|"
          r"size|names?|output|stats|statistics|info|information|label|quota|numbers|metrics|io|image))",
          0.85, negatable=True),
    _rule(TM, "tm.disable_sandbox",
          r"\b(?:disable|deactivate|turn\s+off|switch\s+off|bypass|remove|circumvent|escape|break\s+out\s+of|"
          r"get\s+out\s+of|deaktivier\w*|umgeh\w*|d[ée]sactiv\w*|contourn\w*|desactiv\w*|desativ\w*|disattiv\w*|"
          r"disabilit\w*|отключ\w*|выключ\w*|обойд\w*|обход\w*)\s+(?:\w+\s+){0,3}?(?:the\s+|die\s+|den\s+|das\s+|"
          r"le\s+|la\s+|el\s+|o\s+|a\s+|il\s+|lo\s+)?(?:sandbox\w*|sand-box|seccomp|apparmor|selinux|bac\s+à\s+sable|"
          r"песочниц\w*|sandkasten|entorno\s+aislado|immune\s+system|safety\s+(?:checks?|filters?|guards?)|"
          r"guardrails|security\s+(?:checks?|policy|sandbox))|(?:关闭|禁用|绕过|停用|逃逸|逃离|突破)[^。\n]{0,4}?"
          r"(?:沙箱|沙盒)|\bsandbox\s*[:=]\s*(?:false|0|off|none|disabled)\b|\bsetenforce\s+0\b", 0.85, negatable=True),
    _rule(TM, "tm.container_escape",
          r"\b(?:escape|break\s+out\s+of|get\s+out\s+of)\s+(?:the\s+)?(?:container|jail|chroot|vm|virtual\s+machine|"
          r"docker)\b|\bmount(?:ing)?\s+the\s+host(?:'s)?\s+(?:file\s*system|root|disk|/)|\bnsenter\b", 0.85,
          negatable=True),
    _rule(TM, "tm.host_mount",
          r"(?:-v|--volume)[= ]\s*/:/|\bchroot\s+/host\b|--privileged\b[^\n]{0,80}?(?:-v|--volume)[= ]\s*/(?::|\s)|"
          r"--pid[= ]host\b[^\n]{0,40}?--privileged", 0.85),
    _rule(TM, "tm.raw_device_write",
          r"\b(?:overwrite|write\s+(?:to|over|into)|zero(?:\s+out)?|wipe|shred|erase|format|fill|clobber|trash)\s+"
          r"(?:the\s+|all\s+of\s+)?/dev/(?:sd[a-z]|nvme\d|hd[a-z]|xvd[a-z]|vd[a-z]|mmcblk\d|disk\d|rdisk\d)", 0.9,
          negatable=True),
    _rule(TM, "tm.find_delete_root",
          r"\bfind\s+(?:/|~|\$HOME)(?:\s|$)[^\n]{0,60}?-(?:delete\b|exec\s+rm\b)", 0.9),
    _rule(TM, "tm.run_untrusted_download",
          r"\b(?:download|fetch|grab|curl|wget)\b[^.!?\n]{0,60}?\b(?:binary|executable|script|installer|payload|"
          r"\w+\.sh|\w+\.exe)\b[^.!?\n]{0,40}?\b(?:run|execute|launch)\s+(?:it|them)\b", 0.75,
          requires=(_r(r"\b(?:pastebin|root|sudo|admin\w*|untrusted|unknown|random|without\s+(?:checking|reading|"
                       r"verifying))\b"),), negatable=True),
    _rule(TM, "tm.sudo", r"\bsudo\b(?![-_]?(?:free|less|ers))", 0.7, negatable=True,
          forbids=(_r(r"\bsudo\s+(?:is\s+not|isn'?t|is\s+unavailable|not\s+needed|is\s+not\s+needed)\b|"
                      r"(?:\binstead\s+of|\brather\s+than|\ben\s+lugar\s+de|\bplut[oô]t\s+qu'avec|\bau\s+lieu\s+de|"
                      r"\bstatt\s+mit|\banstatt|\binvece\s+di|\bem\s+vez\s+de|вместо|不要用|不用|别用)\s*(?:\w+\s+){0,2}sudo\b|"
                      # build-time installs and dropping to a lesser user are routine, and so is its absence
                      r"\bDockerfile\b|\bsudo\s+(?:-\w+\s+)*(?:apt(?:-?get)?|dnf|yum|apk|zypper|pacman)\s+(?:-\S+\s+)*install\b|"
                      r"\bsudo\s+-u\s+(?!root\b)\w+|\bsudo\b[^.!?\n]{0,30}?(?:\bnicht\b|\bnot\s+available|\bunavailable|"
                      r"\bno\s+(?:est[aá]\s+)?disponible|\bn'est\s+pas\s+disponible|使えない|不可用|没有)|"
                      r"(?:\bno|\bwithout|\bsans|\bsin|\bohne)\s+sudo\b"),)),
    _rule(TM, "tm.run_as_root",
          r"\b(?:run|execute|launch|start)\s+(?:\w+\s+){0,3}?(?:as\s+(?:the\s+)?(?:root|administrator)\b(?!\s+logger)|"
          r"with\s+(?:root|admin(?:istrator)?|elevated|superuser)\s+(?:privileges|rights|permissions|access))", 0.7,
          negatable=True),
    _rule(TM, "tm.privileged_files", r"/etc/(?:sudoers|shadow)\b|\bNOPASSWD\b", 0.85, negatable=True),
    _rule(TM, "tm.kill_all", r"\bkill\s+-(?:9|KILL|SIGKILL)\s+-1\b|\bkillall5\b|\bkill\s+-9\s+1\b", 0.85),
    _rule(TM, "tm.drop_database", r"\bDROP\s+(?:DATABASE|SCHEMA)\b", 0.7, negatable=True),
    _rule(TM, "tm.shutdown", r"\b(?:shutdown|poweroff|halt)\s+(?:-[hrP]\s+)?now\b|\binit\s+0\b", 0.7, negatable=True),
]

# ----------------------------------------------------------------------------- privacy leak
_PRIVACY_LEAK: list[Rule] = [
    _rule(PL, "pl.openai_key", r"\bsk-(?:proj-|live-|test-|ant-(?:api\d+-)?|or-v1-)?[A-Za-z0-9_\-]{20,}", 0.95, flags=0),
    _rule(PL, "pl.stripe_key", r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}", 0.95, flags=0),
    _rule(PL, "pl.github_token", r"\bgh[pousr]_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{40,}", 0.95, flags=0),
    _rule(PL, "pl.aws_key", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b", 0.95, flags=0),
    _rule(PL, "pl.slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", 0.95, flags=0),
    _rule(PL, "pl.other_token",
          r"\bAIza[0-9A-Za-z_\-]{35}\b|\bhf_[A-Za-z0-9]{30,}\b|\bglpat-[A-Za-z0-9_\-]{20,}|\bnpm_[A-Za-z0-9]{36}\b|"
          r"\bxapp-\d-[A-Za-z0-9-]{20,}|\bSG\.[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}", 0.95, flags=0),
    _rule(PL, "pl.private_key", r"-----BEGIN\s+(?:[A-Z0-9]+\s+){0,3}PRIVATE\s+KEY(?:\s+BLOCK)?-----", 0.95, flags=0),
    _rule(PL, "pl.jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", 0.9, flags=0),
    _rule(PL, "pl.bearer", r"\bbearer\s+(?P<val>[A-Za-z0-9_\-.=+/]{20,})", 0.85, check=secret_value_check),
    _rule(PL, "pl.secret_assignment",
          r"\b(?:api[_-]?key|apikey|secret(?:[_-]?key)?|access[_-]?key|auth[_-]?token|access[_-]?token|token|"
          r"client[_-]?secret|private[_-]?key)[\"']?\s*(?::|=|=>|\s)\s*[\"']?(?P<val>[A-Za-z0-9_\-./+=!@#$%^&*~]{12,})",
          0.85, check=secret_value_check),
    _rule(PL, "pl.password",
          r"(?:\b(?:password|passwort|passphrase|passcode|passwd|pwd|pin|contrase[ñn]a|mot\s+de\s+passe|kennwort|"
          r"senha|parola\s+d'ordine|пароль)\b|密码|口令)(?:\s+[\w']+){0,5}?\s*(?:\bis\b|\bes\b|\best\b|\bist\b|\bé\b|"
          r"\bè\b|\bwas\b|:|：|=|是|為|为)\s*(?P<q>[\"'`“‘«]?)(?P<val>[^\s\"'`”’»,;，。]{4,64})", 0.85,
          check=password_check),
    _rule(PL, "pl.cli_password",
          r"\b(?:mysql|mysqldump|mysqladmin|sshpass|mongo\w*|redis-cli)\b[^\n]{0,60}?(?:\s-p|--password[= ]|\s-a\s)"
          r"(?P<q>[\"']?)(?P<val>[^\s\"']{4,64})", 0.85, check=password_check),
    _rule(PL, "pl.connection_string",
          r"\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@]{1,64}:(?P<pw>[^\s:/@]{3,128})@[\w.-]+", 0.9, check=conn_check),
    _rule(PL, "pl.email",
          r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}\b", 0.75,
          check=email_check),
    _rule(PL, "pl.email_obfuscated",
          r"\b[\w.+-]{1,64}\s*(?:\(at\)|\[at\]|\{at\}|\s+at\s+)\s*[\w-]{1,63}\s*(?:\(dot\)|\[dot\]|\{dot\}|\s+dot\s+)\s*"
          r"[A-Za-z]{2,12}\b", 0.7,
          requires=(_r(r"\(at\)|\[at\]|\{at\}|\(dot\)|\[dot\]|\{dot\}|\s+dot\s+"),)),
    _rule(PL, "pl.home_path",
          r"(?:/home/|/Users/|\b[A-Za-z]:\\+Users\\+)(?P<user>[A-Za-z0-9._-]{2,32})(?=[/\\\s,.;:'\")\]]|$)", 0.75,
          check=home_check),
    _rule(PL, "pl.phone",
          r"(?<![\w+/.-])(?:\+\d{1,3}[\s.-]?)?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?![\w/-]|\.\d)|"
          r"(?<![\w+])\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}(?![\w/-]|\.\d)", 0.7, check=phone_check),
    _rule(PL, "pl.phone_context",
          r"\b(?:phone|mobile|cell|tel|telephone|whatsapp|call|text|sms|number|n[uú]mero|nummer|номер|电话|手机)\b"
          r"[^\d\n]{0,25}(?P<num>\+?\(?\d[\d\s().-]{6,18}\d)", 0.7, check=phone_check),
    _rule(PL, "pl.ssn", r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b", 0.8),
    _rule(PL, "pl.credit_card", r"(?<![\d.-])(?:\d[ -]?){12,18}\d(?![\d-])", 0.9, check=card_check),
]

# ----------------------------------------------------------------------------- scope overreach
_MEM_NOUN = r"(?:rules?|memor(?:y|ies)|lessons?|instructions?|polic(?:y|ies)|guidelines?|heuristics?|guidance|skill\s+cards?)"
_OVERRIDE = (
    r"(?:overrides?|overrule[sd]?|supersedes?|replaces?|trumps?|outranks?|takes?\s+precedence\s+over|"
    r"has\s+(?:priority|precedence)\s+over|beats|invalidates?|cancels?|nullif(?:y|ies))"
)
_TEAM_NOUN = r"(?:agents?|team\s+members|teammates|members\s+of\s+the\s+team|whole\s+team|entire\s+team)"
_GLOBAL_NOUN = (
    r"(?:teams|users|projects|organi[sz]ations?|workspaces|deployments|tenants|customers|companies|"
    r"memory\s+spaces)"
)
_REACH_FRAME = (
    r"\b(?:appl(?:y|ies|ied)|enforce[sd]?|binds?|binding|valid|mandatory|in\s+effect|must\s+be\s+followed|"
    r"obey(?:ed)?|holds?)\b(?:\s+(?:this|it|the\s+rule|the\s+lesson|these))?\s+(?:\w+\s+){0,6}?"
    r"(?:(?:to|for|on|across|by|into|in|of|throughout)\s+)?(?:all|every|each|any|the\s+whole|the\s+entire)\s+"
    r"(?:of\s+the\s+)?(?:other\s+)?"
)
_COPY_FRAME = (
    r"\b(?:copy|share|push|propagate|broadcast|distribute|replicate)\s+(?:this|the)\s+(?:rule|lesson|memory|policy|"
    r"instruction)\b[^.!?\n]{0,50}?\b(?:all|every|each|other)\s+"
)

_SCOPE_OVERREACH: list[Rule] = [
    _rule(SO, "so.overrides_all",
          rf"\b{_OVERRIDE}\s+(?:all|every|each|any)\s+(?:(?:other|else|previous|prior|existing|older|conflicting|"
          rf"single)\s+)?{_MEM_NOUN}\b", 0.85),
    _rule(SO, "so.this_overrides_everything",
          rf"\b{_OVERRIDE}\s+(?:anything|everything)\s+(?:else|you\s+(?:have\s+)?(?:learned|know|were\s+told))|"
          rf"\b{_OVERRIDE}\s+all\s+others\b", 0.85, requires=(_THIS_MEMORY,)),
    _rule(SO, "so.cannot_be_removed",
          r"\b(?:cannot|can\s*not|can't|must\s+not|may\s+not|should\s+never|must\s+never|may\s+never)\s+(?:ever\s+)?be\s+"
          r"(?:rolled\s+back|removed|deleted|overridden|superseded|rejected|archived|demoted|changed|modified|"
          r"replaced|questioned|disabled)", 0.8, requires=(_THIS_MEMORY,)),
    _rule(SO, "so.highest_priority",
          r"\b(?:highest|top|maximum|absolute|overriding|supreme)\s+(?:priority|precedence|authority)\b", 0.75,
          requires=(_THIS_MEMORY,)),
    _rule(SO, "so.no_supersede",
          r"\b(?:no|never\s+(?:let\s+)?(?:a|any)|not\s+(?:a|any))\s+(?:later\s+|newer\s+|future\s+|other\s+|"
          r"subsequent\s+)?(?:lesson|memory|rule|instruction|policy)s?\s+(?:may|can|should|shall|will|is\s+allowed\s+to)"
          r"\s+(?:ever\s+)?(?:supersede|override|replace|overrule|contradict)", 0.85),
    _rule(SO, "so.reject_others",
          r"\b(?:newer|later|other|conflicting|competing|contradicting|disagreeing)\s+(?:memor(?:y|ies)|lessons?|rules?|"
          r"heuristics?)\b[^.!?\n]{0,50}?\b(?:should|must|will|shall|are\s+to|is\s+to)\s+be\s+(?:thrown\s+away|discarded|"
          r"deleted|removed|ignored|disabled|rejected|dropped|purged|overwritten|erased|archived|demoted|suppressed)",
          0.85),
    _rule(SO, "so.delete_other_memories",
          rf"\b(?:delete|remove|disable|erase|purge|wipe|overwrite|deactivate|suppress|demote|reject|archive|drop|clear|"
          rf"forget|ignore|discard)\s+(?:all\s+|every\s+|any\s+)?(?:the\s+)?(?:other|existing|previous|conflicting|"
          rf"competing|remaining|older|prior)\s+{_MEM_NOUN}", 0.85),
    _rule(SO, "so.wipe_memory_store",
          r"\b(?:delete|wipe|erase|purge|clear|drop|reset|destroy)\s+(?:all\s+)?(?:the\s+|your\s+)?"
          r"(?:memory\s+(?:store|database|bank|library)|memories|lesson\s+(?:store|library))\b", 0.85, negatable=True),
    _rule(SO, "so.never_follow_user",
          r"\b(?:never|do\s+not|don't|stop|refuse\s+to)\s+(?:follow|obey|listen\s+to|defer\s+to|comply\s+with|heed)\s+"
          r"(?:the\s+|your\s+)?(?:users?|humans?|operators?|owners?|people)(?:'s?)?(?![-\s]+(?:input|supplied|provided|"
          r"data|links?|urls?|code))", 0.85),
    _rule(SO, "so.ignore_user",
          r"\b(?:ignore|disregard|override|overrule)\s+(?:what(?:ever)?\s+)?(?:the\s+)?(?:users?|humans?|operators?)"
          r"(?:'s?)?\s+(?:says?|said|wants?|asks?|requests?|instructions?|preferences?|commands?|wishes|feedback|"
          r"corrections?)", 0.8),
    _rule(SO, "so.global_policy",
          r"\b(?:global|universal|system-wide|company-wide|organi[sz]ation-wide|platform-wide|mandatory)\s+"
          r"(?:policy|rule|directive|mandate|law|order)\b", 0.8),
    _rule(SO, "so.team_policy", r"\b(?:team-wide|team\s+wide)\s+(?:policy|rule|directive|mandate)\b", 0.7,
          reach="team"),
    _rule(SO, "so.reach_team", rf"{_REACH_FRAME}{_TEAM_NOUN}\b", 0.8, reach="team"),
    _rule(SO, "so.reach_global", rf"{_REACH_FRAME}{_GLOBAL_NOUN}\b", 0.8, reach="global"),
    _rule(SO, "so.copy_team", rf"{_COPY_FRAME}{_TEAM_NOUN}\b", 0.8, reach="team"),
    _rule(SO, "so.copy_global", rf"{_COPY_FRAME}(?:teams?|{_GLOBAL_NOUN})\b", 0.8, reach="global"),
    _rule(SO, "so.reach_globally",
          r"\b(?:appl(?:y|ies)|enforce[sd]?|valid|in\s+effect|binding)\s+(?:\w+\s+){0,3}?(?:globally|everywhere|"
          r"universally|system-wide|across\s+the\s+(?:board|organi[sz]ation|company|platform))\b", 0.8, reach="global"),
    _rule(SO, "so.from_now_on",
          r"\bfrom\s+now\s+on\b[^.!?\n]{0,40}?\b(?:for|in|on)\s+(?:every|all|each|any)\s+(?:\w+\s+)?(?:tasks?|runs?|"
          r"agents?|sessions?|conversations?|requests?|projects?)\b", 0.8),
    _rule(SO, "so.permanent",
          r"\b(?:permanently|forever|irrevocably|for\s+all\s+time|in\s+perpetuity)\b", 0.75,
          requires=(_r(r"\b(?:apply|applies|applied|enforce\w*|follow\w*|obey\w*|rule|policy|instruction|lesson|"
                       r"memory|guideline|directive)\b"),),
          forbids=(_r(r"\bretry\w*|\bloop\w*|\bhang\w*|\bwait\w*|\bblock\w*"),)),
    _rule(SO, "so.skip_quarantine",
          r"\b(?:promote|accept|approve|trust|store|activate|enable|whitelist|allowlist)\s+(?:this|the)\s+(?:lesson|"
          r"memory|rule|note)\b[^.!?\n]{0,50}?\b(?:immediately|without|skip\w*|bypass\w*|right\s+away|directly)\b|"
          r"\b(?:skip|bypass|avoid|circumvent|disable|turn\s+off)\s+(?:the\s+)?(?:quarantine|immune\s+(?:scan|system|"
          r"check)|memory\s+ci|validation\s+replay|a/b\s+replay|safety\s+scan)", 0.8),
    _rule(SO, "so.this_outranks", _OUTRANK_CUE, 0.8, requires=(_r(_THIS_MEM_CUE), _AUTH_TARGET),
          sentence_evidence=True),
    _rule(SO, "so.user_overruled",
          r"\b(?:users?|humans?|operators?|owners?)(?:'s?|’s?|')?\s+(?:corrections?|instructions?|requests?|"
          r"preferences?|feedback|wishes|commands?|input|objections?)\b", 0.8,
          requires=(_r(r"\b(?:ignored|overridden|disregarded|discarded|dismissed|overruled|rejected|set\s+aside)\b"),
                    _r(_THIS_MEM_CUE + r"|\bthis\s+one\b")), sentence_evidence=True),
    _rule(SO, "so.this_permanent", _THIS_MEM_CUE, 0.75, requires=(_PERMANENCE_CUE,), sentence_evidence=True),
    _rule(SO, "so.universal_adoption", _UNIVERSAL_REACH, 0.8, reach="team",
          requires=(_r(_THIS_MEM_CUE), _ADOPT_CUE), sentence_evidence=True),
    _rule(SO, "so.universal_adoption_global", _UNIVERSAL_REACH, 0.8, reach="global",
          requires=(_r(_THIS_MEM_CUE), _ADOPT_CUE, _r(r"\b(?:teams|users|projects|organi[sz]ations?|workspaces|"
                                                       r"tenants|global|equipos|[ée]quipes|squadre|equipes|команд)\b|团队|用户")),
          sentence_evidence=True),
    _rule(SO, "so.remove_other_memories", _OTHER_MEM_CUE, 0.8, requires=(_REMOVE_CUE,), negatable=True,
          forbids=(_r(r"\bduplicate|\bmerg\w*|\b(?:users?|humans?|owners?)\s+(?:can|may)\b|\bnot\s+by\s+delet\w*"),),
          sentence_evidence=True),
    _rule(SO, "so.over_the_user",
          r"\b(?:whatever|no\s+matter\s+what|regardless\s+of\s+what|even\s+if|even\s+when)\s+the\s+(?:users?|humans?|"
          r"operators?|owner)\s+(?:says?|asks?|wants?|requests?|tells?|prefers?)\b|\binstead\s+of\s+(?:what\s+)?the\s+"
          r"(?:users?|humans?|operators?)\s+(?:says?|asks?|wants?)", 0.8,
          requires=(_r(_THIS_MEM_CUE + r"|\bthis\s+one\b"),)),
    # --- multilingual
    _rule(SO, "so.multilingual_override",
          r"\b(?:anula|reemplaza|sustituye)\s+(?:a\s+)?(?:todas|todos|cualquier)\s+(?:las\s+|los\s+)?(?:dem[aá]s|otras|"
          r"otros)|\b(?:remplace|annule|prime\s+sur)\s+(?:toutes|tous)\s+les\s+autres|\b(?:überschreibt|ersetzt|"
          r"hebt)\s+alle\s+anderen|\b(?:substitui|anula|revoga)\s+(?:todas|todos)\s+(?:as|os)\s+outr[ao]s|"
          r"\b(?:sostituisce|annulla)\s+(?:ogni\s+altr[ao]|tutte\s+le\s+altre|tutti\s+gli\s+altri)|"
          r"(?:отменяет|заменяет|перекрывает)\s+(?:все|любые)\s+(?:остальные|другие)|覆盖(?:其他所有|所有其他|其他)|"
          r"优先于(?:所有|一切)", 0.85),
    _rule(SO, "so.multilingual_reach",
          r"\b(?:todos\s+los\s+agentes|tous\s+les\s+agents|alle[n]?\s+agenten|todos\s+os\s+agentes|tutti\s+gli\s+agenti)\b|"
          r"всех\s+агентов|所有(?:的)?(?:智能体|代理|agent)", 0.8, reach="team",
          requires=(_r(r"\b(?:aplica|aplique|vale|gilt|valable|s'applique|applica|vale\s+per|se\s+aplica)\w*\b|"
                       r"\bpour\b|\bfür\b|\bpara\b|\bper\b|действует|применя\w*|适用|所有"),)),
]

RULES: tuple[Rule, ...] = (*_PROMPT_INJECTION, *_SCORE_MANIPULATION, *_TOOL_MISUSE, *_PRIVACY_LEAK, *_SCOPE_OVERREACH)

# ----------------------------------------------------------------------------- squashed-text rules
# Run on the letters-and-digits-only view: catch words split by arbitrary spacing or punctuation.
SQUASH_RULES: tuple[Rule, ...] = (
    _rule(PI, "pi.squashed_ignore",
          r"(?:ignore|disregard|forget|override|bypass)(?:all|any|the|your|of|every|my){0,3}(?:previous|prior|above|"
          r"earlier|preceding|original|initial|system|existing|developer|safety|hidden){1,2}(?:instructions?|prompts?|"
          r"rules|directives|guidelines|programming)", 0.85, negatable=True),
    _rule(PI, "pi.squashed_role",
          r"youarenow(?:in)?(?:dan|developermode|jailbroken|unrestricted|unfiltered|godmode)|newsystemprompt|"
          r"doanythingnow|developermodeenabled|(?:reveal|print|show)(?:the|your)(?:hidden)?systemprompt", 0.85, negatable=True),
    _rule(SM, "sm.squashed_score",
          r"(?:always|just)give(?:this|the|it|a|every|each|step|task|run){0,3}(?:score|rating|reward|phi)(?:of)?"
          r"(?:10|ten|max|maximum|perfect)|tellthe(?:critic|judge|grader|evaluator)(?:that)?(?:the)?(?:task|goal|"
          r"purpose|job)(?:is|was|hasbeen)(?:done|complete|completed|solved|finished|achieved)|"
          r"ratethisas(?:complete|done|perfect|success)|marksuccessregardless", 0.85),
    _rule(SO, "so.squashed_scope",
          r"overrides(?:every|all)other(?:rule|memor|lesson|instruction)|appl(?:y|ies)(?:this)?(?:lesson|rule)?to"
          r"(?:all|every)agents|globalpolicy(?:always|never|must)|neverfollowtheuser|"
          r"(?:delete|remove|disable)(?:all|every)?(?:the)?other(?:memor|lesson|rule)", 0.85, negatable=True),
    _rule(TM, "tm.squashed_sandbox", r"(?:disable|turnoff|escape|bypass)(?:the)?sandbox", 0.85, negatable=True),
)
# fmt: on
