// The HTML productpage renders: the product page (details, reviews with stars), the index page, and the one static stylesheet.
import type { BookDetails } from './details.js';
import type { ProductReviews } from './reviews.js';

export interface Product {
  id: number;
  title: string;
  descriptionHtml: string;
}

export function escapeHtml(text: unknown): string {
  return String(text ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function page(title: string, user: string, content: string): string {
  const nav = user !== ''
    ? `<p class="navbar-text navbar-right"><i class="glyphicon glyphicon-user" aria-hidden="true"></i>
      <span style="padding-left: 5px;">${escapeHtml(user)} ( <a href="logout">sign out</a> )</span></p>`
    : `<form class="navbar-form navbar-right" method="post" action="login" name="login_form">
      <input type="text" name="username" id="username" placeholder="User Name">
      <input type="password" name="passwd" placeholder="Password">
      <button type="submit" class="btn btn-default">Sign in</button>
    </form>`;
  return `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="static/bookinfo.css">
</head>
<body>
<nav class="navbar navbar-inverse navbar-static-top">
  <div class="container">
    <div class="navbar-header"><a class="navbar-brand" href="#">BookInfo Sample</a></div>
    ${nav}
  </div>
</nav>
${content}
</body>
</html>
`;
}

export interface ProductPageModel {
  product: Product;
  user: string;
  detailsStatus: number;
  details: BookDetails | { error: string };
  reviewsStatus: number;
  reviews: ProductReviews | { error: string };
}

function detailsColumn(status: number, details: ProductPageModel['details']): string {
  if (status === 200 && !('error' in details)) {
    return `<h4 class="text-center text-primary">Book Details</h4>
      <dl>
        <dt>Type:</dt>${escapeHtml(details.type)}
        <dt>Pages:</dt>${escapeHtml(details.pages)}
        <dt>Publisher:</dt>${escapeHtml(details.publisher)}
        <dt>Language:</dt>${escapeHtml(details.language)}
        <dt>ISBN-10:</dt>${escapeHtml(details['ISBN-10'])}
        <dt>ISBN-13:</dt>${escapeHtml(details['ISBN-13'])}
      </dl>`;
  }
  return `<h4 class="text-center text-primary">Error fetching product details!</h4>
      <p>${escapeHtml('error' in details ? details.error : '')}</p>`;
}

function starsHtml(stars: number, color: string): string {
  const full = Math.max(0, Math.min(5, stars));
  return `<font color="${escapeHtml(color)}">
          <!-- full stars: -->
${'          <span class="glyphicon glyphicon-star"></span>\n'.repeat(full)}          <!-- empty stars: -->
${'          <span class="glyphicon glyphicon-star-empty"></span>\n'.repeat(5 - full)}        </font>`;
}

function reviewsColumn(status: number, reviews: ProductPageModel['reviews']): string {
  if (status === 200 && !('error' in reviews)) {
    const items = (Array.isArray(reviews.reviews) ? reviews.reviews : []).map((review) => {
      let rating = '';
      if (review.rating?.stars) rating = starsHtml(review.rating.stars, review.rating.color ?? 'black');
      else if (review.rating?.error) rating = `<p><i>${escapeHtml(review.rating.error)}</i></p>`;
      return `      <blockquote>
        <p>${escapeHtml(review.text)}</p>
        <small>${escapeHtml(review.reviewer)}</small>
        ${rating}
      </blockquote>`;
    });
    const cluster = reviews.clustername && reviews.clustername !== 'null' ? ` on cluster <u>${escapeHtml(reviews.clustername)}</u>` : '';
    return `<h4 class="text-center text-primary">Book Reviews</h4>
${items.join('\n')}
      <dl>
        <dt>Reviews served by:</dt>
        <u>${escapeHtml(reviews.podname)}</u>${cluster}
      </dl>`;
  }
  return `<h4 class="text-center text-primary">Error fetching product reviews!</h4>
      <p>${escapeHtml('error' in reviews ? reviews.error : '')}</p>`;
}

export function renderProductPage(model: ProductPageModel): string {
  return page('Simple Bookstore App', model.user, `<div class="container-fluid">
  <div class="row">
    <div class="col-md-12">
      <h3 class="text-center text-primary">${escapeHtml(model.product.title)}</h3>
      <p>Summary: ${model.product.descriptionHtml}</p>
    </div>
  </div>
  <div class="row">
    <div class="col-md-6">
      ${detailsColumn(model.detailsStatus, model.details)}
    </div>
    <div class="col-md-6">
      ${reviewsColumn(model.reviewsStatus, model.reviews)}
    </div>
  </div>
</div>`);
}

/** The sample's landing page: the service graph and links to the product page as a normal or test user. */
export function renderIndexPage(services: Readonly<Record<string, string>>): string {
  const rows = Object.entries(services)
    .map(([name, url]) => `    <tr><td>${escapeHtml(name)}</td><td>${escapeHtml(url)}</td></tr>`)
    .join('\n');
  return page('Simple Bookstore App', '', `<div class="container">
  <h3>Hello! This is a simple bookstore application consisting of three services as shown below</h3>
  <table class="table table-condensed table-bordered table-hover">
    <tr><th>service</th><th>address</th></tr>
${rows}
  </table>
  <p><h4>Click on one of the links below to auto generate a request to the backend as a real user or a tester</h4></p>
  <p><a href="productpage?u=normal">Normal user</a></p>
  <p><a href="productpage?u=test">Test user</a></p>
</div>`);
}

/** Stands in for the sample's Bootstrap files: just enough style, and the star glyphs as text so no font is needed. */
export const BOOKINFO_CSS = `body { font-family: "Helvetica Neue", Helvetica, Arial, sans-serif; margin: 0; color: #333; }
.navbar { background: #222; color: #9d9d9d; padding: 10px 20px; display: flex; justify-content: space-between; align-items: center; }
.navbar .container { display: flex; justify-content: space-between; align-items: center; width: 100%; }
.navbar a { color: #fff; text-decoration: none; }
.navbar-brand { font-size: 18px; }
.container-fluid, .container { padding: 0 20px; }
.row { display: flex; flex-wrap: wrap; }
.col-md-12 { width: 100%; }
.col-md-6 { width: 50%; box-sizing: border-box; padding: 0 15px; }
.text-center { text-align: center; }
.text-primary { color: #337ab7; }
blockquote { border-left: 5px solid #eee; margin: 0 0 20px; padding: 10px 20px; }
blockquote small { display: block; color: #777; }
.glyphicon-star::before { content: "\\2605"; }
.glyphicon-star-empty::before { content: "\\2606"; }
.glyphicon-user::before { content: "\\1F464"; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: 4px 8px; }
`;
