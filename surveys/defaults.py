"""Default wording of the four questions and the rating items (from the spec)."""

# key -> (leadership/staff wording, customer wording with {company})
QUESTIONS: list[tuple[str, str, str]] = [
    (
        "strengths",
        "What do you feel we do well within the customer experience?",
        "What do you feel {company} does well within the customer experience?",
    ),
    (
        "improvements",
        "What do you feel could be improved in the customer experience?",
        "What do you feel {company} could improve in the customer experience?",
    ),
    (
        "competition",
        "What does our competition do differently with their customer experience? Are those differences good or bad?",
        "What do other companies like {company} do differently with their customer experience? "
        "Are those differences good or bad?",
    ),
    (
        "continue_start",
        "What needs to continue to be done, or be started, to improve the customer experience?",
        "What should {company} continue doing, or start doing, to improve your experience?",
    ),
]

# key -> (leadership/staff wording, customer wording with {company})
RATING_ITEMS: list[tuple[str, str, str]] = [
    (
        "overall",
        "Overall, how would you rate the customer experience we deliver?",
        "Overall, how would you rate the experience {company} gives you?",
    ),
    (
        "consistency",
        "How consistently do customers get the same good experience, whoever they deal with?",
        "How consistently do you get the same good experience, whoever you deal with at {company}?",
    ),
    (
        "problem_handling",
        "How well do we handle it when something goes wrong for a customer?",
        "How well does {company} handle it when something goes wrong?",
    ),
    (
        "customer_centricity",
        "How customer-centric is our company?",
        "How much does {company} put you, the customer, at the centre of what it does?",
    ),
]

RATING_SCALE = [
    (1, "Poor"),
    (2, "Fair"),
    (3, "Good"),
    (4, "Very good"),
    (5, "Excellent"),
]
