/**
 * Deterministic, chat-like text in Russian and English: short sentences built from subject / verb /
 * object / circumstance slots, greetings and questions. The `russian` text-search configuration
 * stems both languages, so the search benchmark sees a realistic mix of stems and stop words.
 */

/** mulberry32: a small seeded PRNG, so a seed gives the same data on every machine. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export type Random = () => number;

export const pick = <T>(random: Random, list: readonly T[]): T => list[Math.floor(random() * list.length)]!;

/** A `|`-separated list (kept compact: prettier would put every array item on its own line). */
function words(list: string): string[] {
  return list
    .split('|')
    .map((word) => word.trim())
    .filter(Boolean);
}

const RU = {
  subjects: words(`
    я | мы | ты | вы | коллеги | Маша | Дима | Сергей | Оля | команда | клиент | менеджер | тимлид
    | бухгалтерия | дизайнер | тестировщик | директор | никто | кто-то | все | Аня | Игорь | поддержка
    | отдел продаж | юристы | админ | заказчик | стажёр
  `),
  verbs: words(`
    отправил | посмотрю | обсудим | проверила | исправим | согласовали | перенесли | написал
    | запустили | закрыл | обновила | подготовлю | прочитал | скинь | утвердили | отложили | нашёл
    | сломали | починил | выложил | посчитала | забыл | подписали | переделаем | разберёмся с
    | добавил | удалил | протестировала | настроил | оплатили | ждём | сделаю | посмотрите
  `),
  objects: words(`
    отчёт | задачу | релиз | договор | презентацию | бюджет | сервер | базу данных | макет | счёт
    | план | документацию | тесты | баг | письмо | заявку | смету | прототип | логи | график отпусков
    | доступы | пулл-реквест | миграцию | квартальный отчёт | встречу | ТЗ | расписание | инструкцию
    | таблицу | кнопку | дашборд | интеграцию | бэкап | сборку | тикет | новую версию | аналитику
    | требования | демо | ключи | сертификат | резюме | заказ | отзыв
  `),
  circumstances: words(`
    по проекту | к пятнице | на следующей неделе | после обеда | в понедельник | срочно | сегодня
    | завтра утром | до конца дня | ещё раз | вчера вечером | на созвоне | в чате | по почте
    | для клиента | в проде | на стенде | после релиза | до обеда | как договаривались | наконец
    | в новом офисе | по старой схеме | к демо | вместе с командой | без изменений | в облаке
  `),
  openers: words(`
    Привет! | Всем привет. | Коллеги, | Доброе утро! | Слушайте, | Кстати, | Напоминаю: | Ок.
    | Спасибо! | Понял. | Да, конечно. | Короче, | Итак, | Смотри, | Добрый день. | Ребята,
  `),
  closers: words(`
    Спасибо! | Договорились. | Если что, пишите. | Ок? | Жду ответа. | Хорошего дня! | Ура!
    | Это важно. | Пока не горит. | Сейчас гляну. | Пинганите меня. | Всё ок. | Подробности в тикете.
  `),
  questions: words(`
    Кто-нибудь видел | Когда будет | Где лежит | Кто отвечает за | Можно посмотреть | Что с
    | Нужно ли обновлять | Кто помнит пароль от | Сколько стоит | Успеем доделать
  `),
};

const EN = {
  subjects: words(`
    I | we | you | the team | Alice | Bob | Carol | Dave | the client | our manager | QA | support
    | the designer | ops | marketing | nobody | someone | everyone | Emma | the intern | legal
    | finance | the vendor | the CTO
  `),
  verbs: words(`
    sent | will check | discussed | reviewed | fixed | approved | moved | wrote | deployed | closed
    | updated | will prepare | read | merged | postponed | found | broke | rolled back | shipped
    | estimated | forgot | signed | reworked | looked into | added | removed | tested | configured
    | paid | are waiting for | will do | cancelled | scheduled
  `),
  objects: words(`
    the report | the task | the release | the contract | the slides | the budget | the server
    | the database | the mockup | the invoice | the roadmap | the docs | the tests | the bug
    | the email | the ticket | the estimate | the prototype | the logs | the meeting | the spec
    | the schedule | the dashboard | the integration | the backup | the build | the pull request
    | the migration | the hotfix | the demo | the keys | the certificate | the order | the feedback
    | the onboarding | the pipeline | the metrics | the newsletter
  `),
  circumstances: words(`
    for the project | by Friday | next week | after lunch | on Monday | asap | today
    | tomorrow morning | by end of day | again | last night | on the call | in the channel | by email
    | for the client | in production | on staging | after the demo | before lunch | as agreed
    | finally | in the new project | together with the team | without changes | in the cloud
  `),
  openers: words(`
    Hi all! | Hey, | Morning! | Folks, | Quick note: | FYI, | Reminder: | OK. | Thanks! | Got it.
    | Sure. | So, | Heads up: | Good afternoon. | Team,
  `),
  closers: words(`
    Thanks! | Deal. | Ping me if needed. | OK? | Waiting for your reply. | Have a nice day! | Yay!
    | This is important. | Not urgent. | Looking now. | All good. | Details in the ticket.
  `),
  questions: words(`
    Has anyone seen | When is | Where is | Who owns | Can someone look at | What's up with
    | Do we need to update | Who remembers the password for | How much is | Can we finish
  `),
};

type Language = typeof RU;

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function sentence(random: Random, lang: Language): string {
  const roll = random();
  if (roll < 0.15) return `${pick(random, lang.questions)} ${pick(random, lang.objects)}?`;
  const parts = [pick(random, lang.subjects), pick(random, lang.verbs), pick(random, lang.objects)];
  if (random() < 0.7) parts.push(pick(random, lang.circumstances));
  if (random() < 0.2) parts.push(pick(random, lang.circumstances));
  return `${capitalize(parts.join(' '))}${random() < 0.85 ? '.' : '!'}`;
}

/** One chat message: 60% Russian, 40% English; mostly one or two sentences, sometimes a long one. */
export function message(random: Random): string {
  const lang = random() < 0.6 ? RU : EN;
  const roll = random();
  const sentences = roll < 0.45 ? 1 : roll < 0.8 ? 2 : roll < 0.95 ? 3 : 4 + Math.floor(random() * 5);
  const parts: string[] = [];
  if (random() < 0.3) parts.push(pick(random, lang.openers));
  for (let i = 0; i < sentences; i++) parts.push(sentence(random, lang));
  if (random() < 0.2) parts.push(pick(random, lang.closers));
  return parts.join(' ');
}

/**
 * Words that occur in exactly RARE_HITS seeded messages each (the "rare word" search); none of them
 * occurs in the generated text.
 */
export const RARE_WORDS = ['палимпсест', 'syzygy', 'квинтэссенция', 'quokka'] as const;
export const RARE_HITS = 10;

/**
 * Frequent words for the "common word" search: each is in a few percent of the messages (the seed
 * reports the exact counts). `проект` matches проекту/проекте by stemming.
 */
export const COMMON_WORDS = ['проект', 'release'] as const;

const FIRST_RU = words(`Иван | Мария | Алексей | Ольга | Дмитрий | Анна | Сергей | Елена | Павел | Наталья`);
const LAST_RU = words(`Петров | Смирнова | Кузнецов | Попова | Волков | Соколова | Лебедев | Морозова`);
const FIRST_EN = words(`John | Emily | Michael | Sarah | David | Laura | James | Anna | Robert | Kate`);
const LAST_EN = words(`Smith | Johnson | Brown | Taylor | Wilson | Davies | Evans | Walker`);
const TRANSLIT: Record<string, string> = {
  а: 'a',
  б: 'b',
  в: 'v',
  г: 'g',
  д: 'd',
  е: 'e',
  ж: 'zh',
  з: 'z',
  и: 'i',
  й: 'y',
  к: 'k',
  л: 'l',
  м: 'm',
  н: 'n',
  о: 'o',
  п: 'p',
  р: 'r',
  с: 's',
  т: 't',
  у: 'u',
  ф: 'f',
  х: 'kh',
  ц: 'ts',
  ч: 'ch',
  ш: 'sh',
  щ: 'sch',
  ы: 'y',
  э: 'e',
  ю: 'yu',
  я: 'ya',
  ь: '',
  ъ: '',
};

/** A display name and a unique login name for user number `index`. */
export function person(random: Random, index: number): { displayName: string; login: string } {
  const russian = random() < 0.6;
  const first = pick(random, russian ? FIRST_RU : FIRST_EN);
  const last = pick(random, russian ? LAST_RU : LAST_EN);
  const latin = (word: string) => word.toLowerCase().replace(/[а-яё]/g, (c) => TRANSLIT[c] ?? c);
  return { displayName: `${first} ${last}`, login: `${latin(first)}.${latin(last)}.${index}` };
}

const CHAT_TOPICS = words(`
  Команда бэкенда | Релизы | Офис | Отпуска | Проект «Альфа» | Поддержка | Дизайн | Продажи
  | Frontend | Ops on-call | Weekend plans | Book club | Hiring | Marketing | Random | Onboarding
`);

export function chatName(random: Random, index: number): string {
  return `${pick(random, CHAT_TOPICS)} #${index}`;
}
